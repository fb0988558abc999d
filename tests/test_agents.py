"""Agents as a first-class choice (rem.config.AGENTS, README "Add an agent"): REM and IRIS
from one registry entry each plus a preset: config checks, IRIS's schedule as its reference
code sets it, IRIS's episode sampler, the IRIS agent built, trained a step, imagining from
one frame, scored by the world-model evaluation and dreamt in the viewer, the report's agent
against agent section, and the workflow's per-agent preset and resources."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rem.config import AGENTS, ConfigError, load_config, preset_agent
from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import EpisodeSampler, SegmentSampler
from rem.models.agent import build_agent
from rem.models.optim import build_optimizers
from rem.training.components import ACTOR_CRITIC, TOKENIZER, WORLD_MODEL

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"


def test_iris_preset_is_iris_reference_schedule():
    cfg = load_config("iris", "iris")
    assert cfg.agent == "iris" and cfg.spec == AGENTS["iris"]
    assert (cfg.spec.context_length, cfg.spec.sampler, cfg.spec.world_model) == (
        1,
        "episodes",
        "transformer",
    )
    t = cfg.training  # eloialonso/iris config/trainer.yaml
    assert [c.start_after_epochs for c in (t.tokenizer, t.world_model, t.actor_critic)] == [
        5,
        25,
        50,
    ]
    assert [c.steps_per_epoch for c in (t.tokenizer, t.world_model, t.actor_critic)] == [200] * 3
    assert [c.batch_size for c in (t.tokenizer, t.world_model, t.actor_critic)] == [256, 64, 64]
    assert {c.lr for c in (t.tokenizer, t.world_model, t.actor_critic)} == {1e-4}
    assert {c.max_grad_norm for c in (t.tokenizer, t.world_model, t.actor_critic)} == {10.0}
    assert (t.tokenizer.weight_decay, t.world_model.weight_decay, t.actor_critic.weight_decay) == (
        0.0,
        0.01,
        0.0,
    )
    ac = cfg.actor_critic
    assert (ac.kind, ac.burn_in, ac.imagination_horizon, ac.gamma, ac.lam, ac.entropy_weight) == (
        "pixel",
        20,
        20,
        0.995,
        0.95,
        0.001,
    )
    ev = cfg.evaluation
    assert (ev.every, ev.episodes, ev.final_episodes, cfg.collection.test_temperature) == (
        5,
        16,
        100,
        0.5,
    )
    assert cfg.env == load_config("paper").env  # REM's env protocol
    assert cfg.tokens_per_frame == 16 and cfg.world_model.max_blocks == 20
    assert preset_agent("iris_quick") == "iris" and preset_agent("quick") == "rem"


@pytest.mark.parametrize(
    "preset, variant, overrides, message",
    [
        ("paper", "iris", [], "use --preset iris or iris_quick"),
        ("iris", None, ["world_model.context_length=2"], "imagines from 1 real frame"),
        ("iris", None, ["actor_critic.kind=lsac"], "has no actor_critic.kind 'lsac'"),
        ("iris", "no-pop", [], "no POP switch"),
        ("paper", None, ["agent=storm"], "unknown agent 'storm'.*rem, iris"),
        ("paper", None, ["world_model.context_length=1"], "world_model.context_length must be 2"),
    ],
)
def test_config_that_does_not_fit_its_agent_names_the_fix(preset, variant, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(preset, variant, overrides)


def _replay(lengths, size=8) -> Replay:
    """Frame pixel (0,0,0) = episode tag + 1, pixel (0,0,1) = step index."""
    replay = Replay()
    for tag, n in enumerate(lengths):
        obs = np.zeros((n, 3, size, size), dtype=np.uint8)
        obs[:, 0, 0, 0] = tag + 1
        obs[:, 0, 0, 1] = np.arange(n)
        ends = np.zeros(n, dtype=np.uint8)
        ends[-1] = 1
        replay.add(Episode(obs, np.arange(n) % 3, np.ones(n), ends))
    return replay


@pytest.mark.parametrize("padding", ["right", "left"])
def test_episode_sampler_draws_episodes_uniformly_not_by_length(padding):
    replay = _replay([2, 200])
    kw = dict(batch_size=4000, segment_length=5, context=0, padding=padding)
    iris = EpisodeSampler(replay, rng=np.random.default_rng(0), **kw)
    rem = SegmentSampler(replay, rng=np.random.default_rng(0), **kw)
    assert iris.rebuild() == rem.rebuild() == 202
    for sampler, short_share in ((iris, 0.5), (rem, 2 / 202)):
        batch = sampler.sample()
        obs, mask = batch["observations"].numpy(), batch["mask_padding"].numpy()
        tags = obs[:, :, 0, 0, 0].max(1)
        assert abs(np.mean(tags == 1) - short_share) < 0.03
        # a segment never crosses an episode; right: the first step real, left: the last
        assert all(set(obs[i, mask[i], 0, 0, 0]) == {tags[i]} for i in range(len(tags)))
        assert mask[:, 0 if padding == "right" else -1].all()


def test_component_samplers_follow_the_agent():
    replay = _replay([30, 40], size=64)
    for preset, cls, contexts in (
        ("quick", SegmentSampler, [0, 2, 2]),
        ("iris_quick", EpisodeSampler, [0, 0, 0]),
    ):
        cfg = load_config(preset)
        samplers = [
            spec.sampler(cfg, replay, np.random.default_rng(1))
            for spec in (TOKENIZER, WORLD_MODEL, ACTOR_CRITIC)
        ]
        assert [type(s) for s in samplers] == [cls] * 3
        assert [s.context for s in samplers] == contexts


def _iris_agent(actions=4):
    torch.manual_seed(0)
    cfg = load_config("iris_quick")
    return cfg, build_agent(cfg, actions)


def _batch(b, t, actions=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.rand(b, t, 3, 64, 64, generator=g),
        "actions": torch.randint(0, actions, (b, t), generator=g),
        "rewards": torch.randint(-1, 2, (b, t), generator=g).float(),
        "ends": torch.zeros(b, t, dtype=torch.long),
        "mask_padding": torch.ones(b, t, dtype=torch.bool),
    }


def test_iris_agent_builds_steps_and_imagines_from_one_frame():
    from rem.models.iris import IrisTokenizer, IrisWorldModel
    from rem.models.pixel_actor_critic import PixelActorCritic

    cfg, agent = _iris_agent()
    assert isinstance(agent.tokenizer, IrisTokenizer)
    assert isinstance(agent.world_model, IrisWorldModel)
    assert isinstance(agent.actor_critic, PixelActorCritic)
    assert agent.actor_critic.context_length == 1
    assert agent.actor_critic.effective_horizon == cfg.actor_critic.imagination_horizon
    opt = build_optimizers(agent, cfg)
    decayed, plain = opt.world_model.param_groups
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    assert any(p is agent.world_model.pos_emb.weight for p in plain["params"])
    assert opt.tokenizer.param_groups[0]["weight_decay"] == 0.0  # = Adam
    for spec, batch in ((TOKENIZER, _batch(4, 1)), (WORLD_MODEL, _batch(2, 6))):
        loss, _ = spec.loss(agent, batch)
        assert torch.isfinite(loss)
    rollout = agent.actor_critic.imagine(_batch(2, 5), agent.tokenizer, agent.world_model)
    assert rollout.tokens.shape == (2, 6, 16) and rollout.actions.shape == (2, 6)
    loss, metrics = agent.actor_critic.loss_from_rollout(rollout)
    loss.backward()
    assert torch.isfinite(loss) and metrics["entropy"] > 0


def test_world_model_eval_and_dream_work_for_iris():
    from rem.evaluation.world_model_eval import evaluate_world_model
    from rem.viewer.dream import DreamSession

    cfg, agent = _iris_agent()
    agent.eval()
    rng = np.random.default_rng(0)
    replay = Replay()
    for n in (14, 9):
        obs = rng.integers(0, 255, (n, 3, 64, 64), dtype=np.uint8)
        replay.add(Episode(obs, rng.integers(0, 4, n), np.zeros(n), np.eye(n, dtype=np.uint8)[-1]))
    figures = evaluate_world_model(
        agent.tokenizer,
        agent.world_model,
        replay,
        device="cpu",
        imagination_horizon=cfg.actor_critic.imagination_horizon,
    )
    # every step after the one-frame context is a target exactly once
    assert figures.target_frames == (14 - 1) + (9 - 1)
    assert 0 <= figures.token_accuracy["model"] <= 1
    assert len(figures.imagination_mse["model"]) == cfg.actor_critic.imagination_horizon - 1

    dream = DreamSession(agent, cfg.world_model, 4, torch.device("cpu"))
    assert dream.budget == cfg.world_model.max_blocks - 1
    frames = list(replay.episodes())[0].observations
    dream.anchor(frames[0], frames[1], 2)
    for _ in range(dream.budget):
        frame, reward, _ = dream.step(1)
        assert frame.shape == (3, 64, 64) and reward in (-1.0, 0.0, 1.0)
    assert dream.needs_anchor and dream.max_blocks_used <= cfg.world_model.max_blocks


def _tidy(path: Path, sets: dict[str, dict[str, list[float]]]) -> None:
    from rem.results.score_files import load_references

    refs = load_references(PUBLISHED)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "game", "seed", "raw_score", "hns", "episodes"])
        for variant, games in sets.items():
            for game, scores in games.items():
                for seed, raw in enumerate(scores):
                    writer.writerow([variant, game, seed, raw, float(refs.hns(game, raw)), 100])


def test_report_compares_rem_with_iris_rerun_and_published(tmp_path):
    from rem.results.reports.reproduction import write_reproduction_report
    from rem.results.settings import ResultsConfig

    games = ("Breakout", "Pong", "Boxing", "Krull")
    rem, iris = (json.loads((PUBLISHED / f).read_text()) for f in ("REM.json", "IRIS.json"))
    _tidy(
        tmp_path / "scores.csv",
        {"rem": {g: rem[g][:3] for g in games}, "iris": {g: iris[g][:3] for g in games}},
    )
    cfg = ResultsConfig(published_dir=str(PUBLISHED), reps_aggregates=200, reps_improvement=200)
    write_reproduction_report(tmp_path / "scores.csv", tmp_path / "runs", tmp_path / "report", cfg)
    md = (tmp_path / "report" / "reproduction.md").read_text()
    assert "## iris (4 games" in md and "## rem (4 games" in md  # each vs its published file
    assert "## Agent against agent: rem vs iris (4 games" in md
    assert "P(rem run > iris run), rerun here" in md and "P(rem run > iris run), published" in md
    # REM forks IRIS's evaluation: protocols.yaml records the same protocol for both
    assert "published rem and iris runs agree on every recorded protocol field" in md
    with (tmp_path / "report" / "probability_of_improvement.csv").open() as f:
        pairs = {row["pair"]: float(row["estimate"]) for row in csv.DictReader(f)}
    assert 0 <= pairs["ours (rem),ours (iris)"] <= 1
    assert 0 <= pairs["published (rem),published (iris)"] <= 1
    assert "ours (iris),published (iris)" in pairs


def test_workflow_agent_preset_and_resources():
    from rem.runs.sweep import SweepError, agent_preset, agent_resources

    cfg = {
        "preset": "paper",
        "resources": {"train": {"gpu": 1, "runtime": 900}},
        "agents": {"iris": {"preset": "iris", "resources": {"train": {"runtime": 7200}}}},
    }
    assert agent_preset(cfg, "rem") == "paper" and agent_preset(cfg, "iris") == "iris"
    assert agent_resources(cfg, "iris", "train") == {"gpu": 1, "runtime": 7200}
    assert agent_resources(cfg, "rem", "train") == {"gpu": 1, "runtime": 900}
    with pytest.raises(SweepError, match="agent iris has no preset"):
        agent_preset({"preset": "paper"}, "iris")
