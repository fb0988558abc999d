"""Unit tests of the training plumbing: checkpoints, run folder, metrics, media, policy."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from rem.runs.files import read_metrics
from rem.training.checkpoint import (
    CheckpointError,
    clean_debris,
    load_checkpoint,
    save_checkpoint,
)
from rem.training.media import EpisodeSaver, save_reconstructions
from rem.training.metrics import MetricsLogger
from rem.training.run_dir import RunDir, RunDirError
from rem.utils.rng import rng_state, set_rng_state


def _write_replay(files: dict[str, bytes]):
    """A stand-in for Replay.save: incremental writes by rename, deletions of evicted files."""

    def save(folder):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.name not in files:
                old.unlink()
        for name, data in files.items():
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)

    return save


def test_checkpoint_round_trip_and_only_the_newest_two_kept(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 2, {"w": torch.arange(3)}, _write_replay({"a": b"1", "b": b"2"}))
    save_checkpoint(root, 4, {"w": torch.arange(4)}, _write_replay({"b": b"2", "c": b"3"}))
    state, folder = load_checkpoint(root)
    assert state["epoch"] == 4 and torch.equal(state["w"], torch.arange(4))
    assert sorted(p.name for p in (folder / "replay").iterdir()) == ["b", "c"]
    # the previous checkpoint stays as the fallback; the one before it goes
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", "epoch_000002", "epoch_000004"]
    save_checkpoint(root, 6, {"w": torch.arange(5)}, _write_replay({"c": b"3"}))
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", "epoch_000004", "epoch_000006"]


def test_hard_linked_replay_never_changes_previous_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 2, {}, _write_replay({"a": b"old"}))
    old = root / "epoch_000002" / "replay" / "a"

    def crash(folder):
        _write_replay({"a": b"new"})(folder)
        raise KeyboardInterrupt  # dies mid-checkpoint

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(root, 4, {}, crash)
    assert old.read_bytes() == b"old"
    clean_debris(root)
    state, folder = load_checkpoint(root)
    assert state["epoch"] == 2 and (folder / "replay" / "a").read_bytes() == b"old"
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", "epoch_000002"]


def test_sigkill_mid_checkpoint_keeps_previous(tmp_path):
    root = tmp_path / "checkpoints"
    script = textwrap.dedent(
        f"""
        import torch
        from rem.training.checkpoint import save_checkpoint
        save_checkpoint({str(root)!r}, 2, {{"x": torch.ones(2)}})
        save_checkpoint({str(root)!r}, 4, {{"x": torch.zeros(2)}})
        """
    )
    env = {**os.environ, "REM_TEST_KILL_AT": "checkpoint_mid:4"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert proc.returncode == -9
    assert (root / ".tmp").exists()
    state, _ = load_checkpoint(root)
    assert state["epoch"] == 2 and torch.equal(state["x"], torch.ones(2))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "latest"])
def test_damaged_checkpoint_gives_clear_error(tmp_path, damage):
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 2, {"w": torch.randn(100)}, _write_replay({"ep": b"x" * 100}))
    state_file = root / "epoch_000002" / "state.pt"
    if damage == "truncate":
        state_file.write_bytes(state_file.read_bytes()[:-10])
        match = "truncated or corrupt"
    elif damage == "flip":
        data = bytearray(state_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        state_file.write_bytes(bytes(data))
        match = "SHA-256 mismatch"
    elif damage == "delete":
        (root / "epoch_000002" / "replay" / "ep").unlink()
        match = "missing"
    else:
        (root / "LATEST.json").write_text('{"epoch": 2, "na')
        match = "LATEST.json is corrupt"
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(root)
    assert "restart" in str(err.value)


def test_rng_state_round_trip():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


IDENTITY = {
    "game": "Pong",
    "variant": "rem",
    "seed": 1,
    "config": {"run": {"epochs": 6, "wandb": False}},
}


def test_run_dir_identity(tmp_path):
    run = RunDir(tmp_path / "run")
    run.check_identity(IDENTITY)  # empty folder: fine
    run.start_session(IDENTITY, {"device": "cpu"}, from_epoch=0)
    manifest = json.loads(run.manifest.read_text())
    assert manifest["game"] == "Pong" and manifest["status"] == "running"
    assert "torch" in manifest["packages"] and "commit" in manifest["git"]
    run.check_identity(IDENTITY)
    # logging switches may change on resume
    run.check_identity({**IDENTITY, "config": {"run": {"epochs": 6, "wandb": True}}})
    with pytest.raises(RunDirError, match=r"config.run.epochs: 6 \(folder\) vs 7 \(now\)"):
        run.check_identity({**IDENTITY, "config": {"run": {"epochs": 7, "wandb": False}}})
    with pytest.raises(RunDirError, match="seed: 1 .* vs 2"):
        run.check_identity({**IDENTITY, "seed": 2})
    run.finish({"mean_return": 1.0})
    assert run.is_complete()
    assert json.loads(run.manifest.read_text())["status"] == "completed"


def test_identity_of_an_older_folder_tolerates_added_and_retired_keys(tmp_path):
    """A folder written before a config key existed resumes when the key is at its default
    (the old behaviour); a retired key at its only value is no difference either."""
    from rem.config import Config

    now = Config().to_dict()
    before = json.loads(json.dumps(now))
    del before["collection"]["replay_max_steps"]
    before["run"]["compile"] = False
    run = RunDir(tmp_path / "run")
    run.start_session({**IDENTITY, "config": before}, {}, from_epoch=0)
    run.check_identity({**IDENTITY, "config": now})
    now["collection"]["replay_max_steps"] = 5000
    with pytest.raises(RunDirError, match=r"config.collection.replay_max_steps: None"):
        run.check_identity({**IDENTITY, "config": now})


def test_foreign_folder_refused(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(RunDirError, match="no manifest.json"):
        RunDir(tmp_path).check_identity(IDENTITY)


def test_metrics_truncate_drops_newer_and_torn_lines(tmp_path):
    logger = MetricsLogger(tmp_path / "metrics.jsonl")
    for epoch in range(1, 5):
        logger.log({"epoch": epoch, "loss": float(epoch), "nan": float("nan")})
    logger.log({"epoch": 4, "final": True})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 5, "lo')  # torn by a kill
    logger.truncate(2)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2] and records[0]["nan"] is None


def test_optional_loggers_fail_clearly_when_missing(tmp_path):
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install wandb"):
            MetricsLogger(tmp_path / "m.jsonl", wandb_config={})


def test_reconstruction_pngs(tmp_path):
    from PIL import Image

    x = torch.rand(3, 4, 3, 64, 64)
    paths = save_reconstructions(tmp_path, 7, x, x)
    assert [p.name for p in paths] == [f"epoch_007_t_{i:03d}.png" for i in range(4)]
    assert Image.open(paths[0]).size == (128, 192)


def test_episode_saver_keeps_recent_and_best(tmp_path):
    class Ep:
        def __init__(self, n, r):
            self.observations = np.zeros((n, 3, 64, 64), np.uint8)
            self.actions = np.zeros(n, np.int64)
            self.rewards = np.full(n, r, np.float32)
            self.ends = np.zeros(n, np.uint8)

    saver = EpisodeSaver(tmp_path, "train")
    for i in range(12):
        saver.save(Ep(3, 5.0 if i == 3 else 0.0), i, epoch=1)
    names = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert "best_episode_3_epoch_1.pt" in names
    assert len([n for n in names if n.startswith("episode_")]) == 10
    assert "episode_0_epoch_1.pt" not in names and "episode_11_epoch_1.pt" in names


def test_summary_matches_the_spec_parameter_counts(capsys):
    from rem.cli import main

    assert main(["summary", "--game", "Breakout", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    counts = out["parameters"]
    # docs/protocol.md, A = 4 (Breakout): tokenizer without LPIPS, world model, LSAC
    assert counts["tokenizer"]["trainable"] == 3_189_667
    assert counts["world_model"]["trainable"] == 4_756_997
    assert counts["actor_critic"]["trainable"] == 4_572_357
    assert out["config"]["run"]["epochs"] == 600 and out["num_actions"] == 4


def test_summary_applies_variant_and_overrides(capsys):
    from rem.cli import main

    assert main(["summary", "--game", "Pong", "--preset", "quick", "--variant", "4x4-tokenizer",
                 "world_model.num_layers=3", "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["tokenizer"]["num_downsample_steps"] == 4
    assert out["config"]["world_model"]["num_layers"] == 3 and out["num_actions"] == 6
    assert main(["summary", "--game", "Pong", "world_model.num_layerz=3"]) == 2
    assert "unknown key 'world_model.num_layerz'" in capsys.readouterr().err
    assert main(["summary", "--game", "pong"]) == 2
    assert "Did you mean 'Pong'" in capsys.readouterr().err


def test_train_cli_rejects_bad_input(tmp_path, capsys):
    from rem.cli import main

    assert main(["train", "--game", "Pongg", "--seed", "1", "--run-dir", str(tmp_path)]) == 2
    assert "unknown game" in capsys.readouterr().err
    args = [
        "train",
        "--game",
        "Pong",
        "--seed",
        "1",
        "--run-dir",
        str(tmp_path),
        "--preset",
        "quick",
    ]
    assert main([*args, "run.epochs=zero"]) == 2
    assert "run.epochs must be int" in capsys.readouterr().err
    assert main([*args, "run.device=cuda:7"]) == 2 or torch.cuda.is_available()
    assert not list(tmp_path.iterdir())  # nothing written for a refused run


def test_train_input_errors_are_one_line_and_touch_nothing(tmp_path, monkeypatch, capsys):
    """Missing perceptual-loss weights and a run folder that cannot be created stop before
    anything is written, with one line and exit code 2 (no traceback)."""
    from rem.cli import main

    monkeypatch.setenv("REM_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    run_dir = tmp_path / "run"
    assert main(["train", "--game", "Pong", "--seed", "0", "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rem weights fetch" in err and "Traceback" not in err
    assert not run_dir.exists()
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "run"
    argv = ["train", "--game", "Pong", "--seed", "0", "--run-dir", str(bad), "--preset", "quick"]
    assert main(argv) == 2
    assert "cannot create it" in capsys.readouterr().err


def test_agent_policy_epsilon_and_state():
    from rem.config import load_config
    from rem.evaluation.agent_policy import AgentPolicy
    from rem.models.agent import build_agent
    from rem.policy import Policy

    agent = build_agent(load_config("quick"), 4).eval()
    policy = AgentPolicy(agent, 1.0, 1.0, "cpu", num_actions=4, seed=0)  # always random
    assert isinstance(policy, Policy)
    policy.reset(3)
    policy.burn_in(
        np.zeros((3, 2, 3, 64, 64), np.uint8),
        np.array([[False, True]] * 3),
        np.zeros((3, 2), np.int64),
    )
    state = policy.state_dict()
    a = policy.act(np.zeros((3, 3, 64, 64), np.uint8))
    assert a.dtype == np.int64 and a.shape == (3,) and ((a >= 0) & (a < 4)).all()
    policy.load_state_dict(state)
    assert (policy.act(np.zeros((3, 3, 64, 64), np.uint8)) == a).all()  # same epsilon draws
    policy.reset_rows(np.array([True, False, False]))
    with pytest.raises(ValueError, match="epsilon"):
        AgentPolicy(agent, 1.0, 1.5, "cpu", num_actions=4)


def test_run_dir_lock_is_exclusive(tmp_path):
    run = RunDir(tmp_path / "run")
    other = RunDir(tmp_path / "run")
    with run.lock(), pytest.raises(RunDirError, match="another `rem train` process"), other.lock():
        pass
    with run.lock():  # released
        pass


def test_public_trainer_api_follows_the_component_table(tmp_path):
    """`setup` builds one sampler per row of the component table, with the row's shape; the
    replay bounds of the config reach the replay; `run_epoch` runs an epoch."""
    from rem.config import load_config
    from rem.training.components import COMPONENTS
    from rem.training.trainer import Trainer

    cfg = load_config("quick", None, ["collection.replay_max_steps=150"])
    trainer = Trainer(cfg, game="Pong", seed=0, variant="rem", run_dir=tmp_path, log=print)
    trainer.setup()
    try:
        shapes = {
            name: (s.batch_size, s.segment_length, s.context, s.padding)
            for name, s in trainer.samplers.items()
        }
        assert shapes == {
            "tokenizer": (cfg.training.tokenizer.batch_size, 1, 0, "right"),
            "world_model": (cfg.training.world_model.batch_size, 6, 2, "right"),
            "actor_critic": (cfg.training.actor_critic.batch_size, 5, 2, "left"),
        }
        assert [c.name for c in trainer.components] == [s.name for s in COMPONENTS]
        record = trainer.run_epoch(1)  # 100 collected steps, nothing trains yet
        assert record["collection/steps"] == 100 and "tokenizer/train/loss" not in record
        trainer.collector.collect(trainer.train_policy, 300)  # > one 250-step Pong episode
        assert trainer.replay.max_steps == 150 and trainer.replay.num_evicted >= 1
        assert trainer.replay.num_steps <= 150 or len(trainer.replay) == 1
    finally:
        trainer.close()
