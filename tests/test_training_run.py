"""End to end: `rem train --preset quick` on a real game on CPU, then the run-folder rules.

One run (module fixture) is shared by the tests here and by tests/test_resume.py's reference.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from training_helpers import GAME, SEED, reference_run, rem_cmd, rem_exe

from rem.runs.files import read_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return reference_run(tmp_path_factory)


def test_run_folder_contract(run):
    path, proc, seconds = run
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("manifest.json", "metrics.jsonl", "scores.json", "COMPLETED"):
        assert (path / name).is_file(), name
    scores = json.loads((path / "scores.json").read_text())
    assert (scores["game"], scores["variant"], scores["seed"]) == (GAME, "rem", SEED)
    assert scores["episodes"] == len(scores["returns"]) == len(scores["lengths"]) == 3
    assert scores["mean_return"] == pytest.approx(sum(scores["returns"]) / 3)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["ended_at"]
    assert manifest["perceptual_loss"] is False and manifest["device"] == "cpu"
    assert manifest["config"]["run"]["epochs"] == 6 and manifest["packages"]["torch"]
    # the committed checkpoint is the final one; media of every kind exist
    assert json.loads((path / "checkpoints" / "LATEST.json").read_text())["epoch"] == 6
    assert list((path / "media" / "reconstructions").glob("epoch_*_t_*.png"))
    for kind in ("train", "test", "imagination"):
        assert list((path / "media" / "episodes" / kind).glob("episode_*.pt")), kind


def test_every_phase_ran_and_losses_fall(run):
    path, proc, _ = run
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(path / "metrics.jsonl")
    epochs = [r for r in records if not r.get("final")]
    assert [r["epoch"] for r in epochs] == list(range(1, 7))
    assert records[-1]["final"] and records[-1]["final/episodes"] == 3
    assert (
        all(r["collection/steps"] > 0 for r in epochs[:5]) and "collection/steps" not in epochs[5]
    )
    for key in ("tokenizer/train/loss", "world_model/train/loss", "actor_critic/train/loss"):
        values = [r[key] for r in epochs if key in r]
        assert len(values) >= 2, key
    assert any("test/return_mean" in r for r in epochs)
    assert any("imagination/return_mean" in r for r in epochs)
    assert all(
        r["tokenizer/train/grad_norm_max"] >= r["tokenizer/train/grad_norm_mean"]
        for r in epochs
        if "tokenizer/train/loss" in r
    )
    tok = [r["tokenizer/train/loss"] for r in epochs if "tokenizer/train/loss" in r]
    wm = [r["world_model/train/loss"] for r in epochs if "world_model/train/loss" in r]
    assert tok[-1] < 0.7 * tok[0], tok
    assert wm[-1] < 0.9 * wm[0], wm


def test_complete_run_does_nothing(run):
    path, _, _ = run
    before = (path / "metrics.jsonl").read_text()
    proc = subprocess.run(rem_cmd(path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout
    assert (path / "metrics.jsonl").read_text() == before


def test_different_config_refuses(run):
    path, _, _ = run
    proc = subprocess.run(
        rem_cmd(path, "world_model.num_layers=3"), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    assert "different run" in proc.stderr and "world_model.num_layers: 2" in proc.stderr
    seed = [a if a != str(SEED) else str(SEED + 1) for a in rem_cmd(path)]
    proc = subprocess.run(seed, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and f"seed: {SEED} (folder) vs {SEED + 1} (now)" in proc.stderr


def test_evaluate_checkpoint(run, tmp_path):
    path, _, _ = run
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [
            rem_exe(),
            "evaluate",
            "--checkpoint",
            str(path),
            "--episodes",
            "2",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["policy"] == "checkpoint" and result["checkpoint_epoch"] == 6
    assert result["temperature"] == 0.5 and result["game"] == GAME


def test_evaluate_checkpoint_refuses_a_corrupt_checkpoint(run, tmp_path):
    import shutil

    path, _, _ = run
    copy = tmp_path / "run"
    shutil.copytree(path, copy)
    state = copy / "checkpoints" / "epoch_000006" / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    proc = subprocess.run(
        [rem_exe(), "evaluate", "--checkpoint", str(copy), "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr
