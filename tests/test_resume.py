"""Crash safety: a quick run SIGKILLed (right after a checkpoint, or in the middle of one) and
resumed ends with the same weights, metrics and scores as the uninterrupted run (CPU,
run.deterministic=true); a chain of kills at the moments scripts/fault_injection.py draws
from (collection, replay save, checkpoint write and commit, final evaluation, finish) too."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from training_helpers import GAME, SEED, quick_run, reference_run

from rem.runs.files import read_metrics
from rem.training.checkpoint import load_checkpoint, read_latest

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
        "epoch_000004",  # the previous checkpoint, kept as a fallback
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


def _fault_injection():
    path = Path(__file__).resolve().parents[1] / "scripts" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# One run with run.checkpoint_every=1 killed at each moment in turn; each kill is counted
# from the start of the process it hits. Resumes come from checkpoints 2, 3, 4, 5 and 6.
CHAIN = [
    "collect:3@50",  # mid-collection of epoch 3 (checkpoint 2 committed)
    "replay_write:4",  # inside the replay save of checkpoint 4 (3 committed)
    "checkpoint_state:5",  # checkpoint 5 written, not yet verified (4 committed)
    "checkpoint_renamed:6",  # inside the commit of checkpoint 6 (5 committed)
    "evaluate:6@40",  # inside the final evaluation (6 committed)
    "finish_scores",  # scores.json written, COMPLETED not: the run is finished
]


def test_fault_chain_resumes_from_every_checkpoint_identical(tmp_path_factory, tmp_path):
    """Issue 16: the open episode is extended across >= 3 checkpoints and the run resumes
    from each; every kill resumes, and the run ends identical to the uninterrupted one
    (which checkpoints every 2 epochs: checkpoints must not change the result)."""
    faults = _fault_injection()
    ref_dir, ref_proc, _ = reference_run(tmp_path_factory)
    assert ref_proc.returncode == 0, ref_proc.stderr[-3000:]
    assert (faults.GAME, faults.RUN_SEED) == (GAME, SEED)
    run_dir = tmp_path / "run"
    versions: dict[int, set[int]] = {}  # episode id -> versions in the checkpoints resumed from
    resumed_from = []
    for spec in CHAIN:
        proc = faults.run_train(run_dir, kill=spec)
        assert proc.returncode == -9, (spec, proc.stdout[-2000:], proc.stderr[-2000:])
        latest = read_latest(run_dir / "checkpoints")
        resumed_from.append(latest["epoch"])
        replay = json.loads(
            (run_dir / "checkpoints" / latest["name"] / "replay" / "manifest.json").read_text()
        )
        for entry in replay["episodes"]:
            versions.setdefault(entry["id"], set()).add(entry["version"])
    assert resumed_from == [2, 3, 4, 5, 6, 6]
    assert max(len(v) for v in versions.values()) >= 3  # one episode across 3 checkpoints
    proc = faults.run_train(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "COMPLETED written again, nothing retrained" in proc.stdout
    assert faults.compare(run_dir, ref_dir) == []
    sessions = json.loads((run_dir / "manifest.json").read_text())["sessions"]
    assert [s["from_epoch"] for s in sessions] == [0, 2, 3, 4, 5, 6]  # no session for the last
