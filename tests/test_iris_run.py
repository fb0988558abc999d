"""A quick IRIS run end to end (`rem train --preset iris_quick`, CPU, deterministic): it
trains every component, is SIGKILLed right after its epoch-2 checkpoint, resumes to the same
weights, optimiser state, metrics and scores as the uninterrupted run, and its checkpoint
evaluates (`rem evaluate`) and scores its world model (`rem wm-eval`)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch
from training_helpers import rem_exe

from rem.runs.files import read_metrics
from rem.training.checkpoint import load_checkpoint, read_latest

pytestmark = pytest.mark.slow

GAME, SEED = "Breakout", 1


def iris_run(run_dir, kill_at=None, timeout=900):
    cmd = [
        rem_exe(), "train", "--game", GAME, "--seed", str(SEED), "--run-dir", str(run_dir),
        "--preset", "iris_quick", "run.deterministic=true",
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("REM_TEST_KILL_AT", None)
    if kill_at:
        env["REM_TEST_KILL_AT"] = kill_at
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def _without_times(records):
    return [
        {k: v for k, v in r.items() if not k.startswith("time/") and k != "final/eval_seconds"}
        for r in records
    ]


def test_iris_quick_run_trains_resumes_identical_and_evaluates(tmp_path):
    ref, run = tmp_path / "reference", tmp_path / "run"
    proc = iris_run(ref)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((ref / "manifest.json").read_text())
    assert manifest["variant"] == "iris" and manifest["config"]["agent"] == "iris"
    records = read_metrics(ref / "metrics.jsonl")
    trained = {k.split("/")[0] for r in records for k in r if k.endswith("/train/loss")}
    assert trained >= {"tokenizer", "world_model", "actor_critic"}, trained

    proc = iris_run(run, kill_at="after_checkpoint:2")
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert read_latest(run / "checkpoints")["epoch"] == 2
    proc = iris_run(run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "from the checkpoint of epoch 2" in proc.stdout

    ours, theirs = (load_checkpoint(p / "checkpoints")[0] for p in (run, ref))
    for key, value in theirs["agent"].items():
        assert torch.equal(ours["agent"][key], value), key
    for name in ("tokenizer", "world_model", "actor_critic"):
        a, b = ours["optimizers"][name]["state"], theirs["optimizers"][name]["state"]
        assert all(torch.equal(a[i]["exp_avg"], b[i]["exp_avg"]) for i in b), name
    scores, ref_scores = (json.loads((p / "scores.json").read_text()) for p in (run, ref))
    scores.pop("eval_seconds"), ref_scores.pop("eval_seconds")
    assert scores == ref_scores
    assert _without_times(read_metrics(run / "metrics.jsonl")) == _without_times(records)

    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [rem_exe(), "evaluate", "--checkpoint", str(run), "--episodes", "2", "--envs", "2",
         "--seed", "7", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(out.read_text())["episodes"] == 2
    figures = tmp_path / "wm.json"
    proc = subprocess.run(
        [rem_exe(), "wm-eval", str(run), "--steps", "120", "--json", str(figures)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "iris" in proc.stdout  # the table title names the agent's world model
    assert json.loads(figures.read_text())["agent"] == "iris"
    # every `rem play` mode (headless, scripted keys) and every `rem video` mode on it
    from rem.cli import main

    for mode in ("agent", "agent-panels", "human-wm", "agent-wm", "real-vs-imagined", "episodes"):
        argv = ["play", str(run), "--mode", mode, "--fps", "1000", "--device", "cpu"]
        assert main([*argv, "--max-ticks", "6", "--script", "1:, 2:d 3:d 5:,"]) == 0, mode
    for mode in ("agent", "agent-panels", "agent-wm", "real-vs-imagined", "episodes"):
        video = tmp_path / f"{mode}.mp4"
        argv = ["video", str(run), "--mode", mode, "--out", str(video), "--steps", "4"]
        assert main([*argv, "--device", "cpu"]) == 0 and video.stat().st_size > 0, mode
