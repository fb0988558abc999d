"""Crash safety: a quick run SIGKILLed (right after a checkpoint, or in the middle of one) and
resumed ends with the same weights, metrics and scores as the uninterrupted run (CPU,
run.deterministic=true)."""

from __future__ import annotations

import json

import pytest
import torch
from training_helpers import quick_run, reference_run

from rem.training.checkpoint import load_checkpoint, read_latest
from rem.training.metrics import read_metrics

pytestmark = pytest.mark.slow


def _weights(path):
    state, _ = load_checkpoint(path / "checkpoints")
    return state


def _without_times(records):
    return [
        {k: v for k, v in r.items() if not k.startswith("time/") and k != "final/eval_seconds"}
        for r in records
    ]


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path_factory, tmp_path):
    ref_dir, ref_proc, _ = reference_run(tmp_path_factory)
    assert ref_proc.returncode == 0, ref_proc.stderr[-3000:]
    run_dir = tmp_path / "run"

    # 1. killed right after the checkpoint of epoch 2 was committed
    _, proc, _ = quick_run(run_dir, kill_at="after_checkpoint:2")
    assert proc.returncode == -9, proc.stderr[-3000:]  # SIGKILL
    assert read_latest(run_dir / "checkpoints")["epoch"] == 2
    # 2. resumed, then killed in the middle of the checkpoint of epoch 4 (replay written,
    #    state not): the checkpoint of epoch 2 must still be the committed, intact one
    _, proc, _ = quick_run(run_dir, kill_at="checkpoint_mid:4")
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert "from the checkpoint of epoch 2" in proc.stdout
    assert read_latest(run_dir / "checkpoints")["epoch"] == 2
    assert (run_dir / "checkpoints" / ".tmp" / "replay").exists()  # the torn checkpoint
    assert not (run_dir / "COMPLETED").exists()
    # 3. resumed to the end
    _, proc, _ = quick_run(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "from the checkpoint of epoch 2" in proc.stdout
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "LATEST.json",
        "epoch_000006",
    ]

    ours, ref = _weights(run_dir), _weights(ref_dir)
    for key, value in ref["agent"].items():
        assert torch.equal(ours["agent"][key], value), key
    assert json.dumps(
        ours["optimizers"]["world_model"]["state"][0]["exp_avg"].tolist()
    ) == json.dumps(ref["optimizers"]["world_model"]["state"][0]["exp_avg"].tolist())
    scores, ref_scores = (json.loads((p / "scores.json").read_text()) for p in (run_dir, ref_dir))
    ref_scores.pop("eval_seconds"), scores.pop("eval_seconds")
    assert scores == ref_scores
    assert _without_times(read_metrics(run_dir / "metrics.jsonl")) == _without_times(
        read_metrics(ref_dir / "metrics.jsonl")
    )
    sessions = json.loads((run_dir / "manifest.json").read_text())["sessions"]
    assert [s["from_epoch"] for s in sessions] == [0, 2, 2]
