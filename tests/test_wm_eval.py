"""World-model evaluation against baselines (`rem wm-eval`, the trainer's wm_eval/* metrics)."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest
import torch
from fake_sprite import ACTIONS, SPRITE_ENV, SpriteAtari
from training_helpers import reference_run, rem_exe

from rem.config import load_config
from rem.data.sampler import batch_to_device
from rem.envs.atari import wrap_env
from rem.evaluation.world_model_eval import (
    WM_EVAL_SEGMENTS,
    collect_held_out,
    copy_cross_entropy,
    evaluate_world_model,
    f1_binary,
    f1_macro,
    shuffle_actions,
    tile_windows,
    windows_batch,
)
from rem.models.agent import build_agent
from rem.policy import RandomPolicy
from rem.runs.files import read_metrics


@pytest.fixture(scope="module")
def sprite_data():
    env = wrap_env(SpriteAtari(), train=True, seed=3, cfg=SPRITE_ENV)
    return collect_held_out(env, RandomPolicy(len(ACTIONS), seed=0), 130)


def test_held_out_data_comes_from_the_collector(sprite_data):
    assert sprite_data.num_steps == 130 and len(sprite_data) == 4  # 40-step episodes
    assert [sprite_data[i].ended for i in sprite_data.ids()] == [True, True, True, False]


def test_windows_make_every_step_after_the_context_a_target_once(sprite_data):
    length, context = 6, 2
    windows = tile_windows(sprite_data, length, context)
    batch = windows_batch(windows, length)
    targets = {}
    for row, (episode, start) in enumerate(windows):
        real = batch["mask_padding"][row].numpy()
        assert real[: context + 1].all()  # more than the context is real
        n = int(real.sum())
        assert np.array_equal(batch["actions"][row, :n].numpy(), episode.actions[start : start + n])
        for t in range(start + context, start + n):
            targets[(id(episode), t)] = targets.get((id(episode), t), 0) + 1
    expected = {(id(e), t) for e in sprite_data.episodes() for t in range(context, len(e))}
    assert set(targets) == expected and set(targets.values()) == {1}


def test_shuffled_actions_keep_the_real_steps_action_counts():
    actions = torch.tensor([[0, 1, 2, 3], [4, 4, 0, 0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    out = shuffle_actions(actions, mask, np.random.default_rng(0))
    assert sorted(out[mask].tolist()) == sorted(actions[mask].tolist())
    assert out[~mask].tolist() == [0, 0] and not torch.equal(out, actions)


def test_f1_and_copy_cross_entropy():
    target, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 2 fp 1 fn 0 -> 0.8; class 2: 0
    assert f1_macro(target, pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert f1_binary(np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    assert f1_binary(np.zeros(3), np.zeros(3)) is None  # no positive: undefined, not 0 or 1
    # copying with probability p: -(p log p + (1 - p) log((1 - p) / (V - 1)))
    assert copy_cross_entropy(0.9, 11) == pytest.approx(
        -(0.9 * math.log(0.9) + 0.1 * math.log(0.01))
    )


@pytest.mark.parametrize("variant", ["rem", "no-pop"])
def test_model_figures_match_the_training_loss(variant, sprite_data):
    """The teacher-forced predictions are the ones the world model's loss scores: on one
    batch holding every window, the model's cross-entropy equals compute_loss's loss_obs."""
    cfg = load_config("quick", variant)
    torch.manual_seed(0)
    agent = build_agent(cfg, len(ACTIONS), load_perceptual_weights=False).eval()
    length, context = cfg.world_model.max_blocks, cfg.world_model.context_length
    windows = tile_windows(sprite_data, length, context)
    figures = evaluate_world_model(
        agent.tokenizer,
        agent.world_model,
        sprite_data,
        device="cpu",
        imagination_horizon=cfg.actor_critic.imagination_horizon,
        batch_size=len(windows),
    )
    with torch.no_grad():
        batch = batch_to_device(windows_batch(windows, length), "cpu")
        _, metrics = agent.world_model.compute_loss(batch, agent.tokenizer)
    assert figures.token_cross_entropy["model"] == pytest.approx(metrics["loss_obs"], rel=1e-5)
    assert figures.segments == len(windows) and figures.target_frames == 130 - 4 * context
    steps = cfg.actor_critic.imagination_horizon - context
    for values in figures.imagination_mse.values():
        assert len(values) == steps and all(v is not None and v >= 0 for v in values)
    # frames repeat exactly when the sprite stays (NOOP or a bump): the repeat baseline knows
    assert 0 < figures.token_accuracy["repeat_previous"] < 1


# ------------------------------------------------------------------ on a quick-preset run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path, proc, _ = reference_run(tmp_path_factory)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.mark.slow
def test_trainer_logs_world_model_figures(run):
    records = {r["epoch"]: r for r in read_metrics(run / "metrics.jsonl") if not r.get("final")}
    # quick preset: world model from epoch 3, evaluations at epochs 2 and 4
    assert not any(k.startswith("wm_eval/") for k in records[2])
    logged = records[4]
    for key in (
        "token_accuracy/model",
        "token_accuracy/shuffled_actions",
        "token_accuracy/repeat_previous",
        "token_cross_entropy/model",
        "reward_accuracy/majority",
        "end_f1/model",
        "imagination_mse/model",
        "imagination_mse/reconstruction",
        "imagination_mse/repeat_last",
    ):
        assert f"wm_eval/{key}" in logged, key
    assert 0 <= logged["wm_eval/token_accuracy/model"] <= 1
    assert 0 < logged["wm_eval/segments"] <= WM_EVAL_SEGMENTS
    assert len(logged["wm_eval/imagination_mse_per_step/model"]) == 4  # horizon 6 - context 2


@pytest.mark.slow
@pytest.mark.parametrize("source", ["fresh", "replay"])
def test_wm_eval_command(run, tmp_path, source):
    out = tmp_path / "wm.json"
    cmd = [rem_exe(), "wm-eval", str(run), "--steps", "120", "--source", source, "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "token accuracy" in proc.stdout and "repeat last real frame" in proc.stdout
    figures = json.loads(out.read_text())
    assert (figures["game"], figures["checkpoint_epoch"], figures["source"]) == (
        "Breakout",
        6,
        source,
    )
    assert figures["steps"] >= 120 if source == "replay" else figures["steps"] == 120
    assert set(figures["token_accuracy"]) == {"model", "shuffled_actions", "repeat_previous"}
    assert figures["reward"]["majority"]["accuracy"] >= 0.5
    if source == "fresh":  # seeded collection, shuffles and imagination: same figures again
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert json.loads(out.read_text()) == figures, again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/run"], "is not a folder"),
        (["{tmp}"], "no manifest.json"),
        (["{tmp}", "--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_wm_eval_bad_input_is_one_line(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [rem_exe(), "wm-eval", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
