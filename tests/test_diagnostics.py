"""The learning diagnostics on a real quick run: `rem diagnose tokenizer-drift` (the two
committed checkpoints' tokenizers on the same replay frames) and `rem diagnose wm-fit` (a fresh
world model on the frozen tokenizer's tokens, and on the synthetic copy task)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rem", "diagnose", name.replace("_", "-"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_drift_between_committed_checkpoints(quick_run_dir, tmp_path):
    out = tmp_path / "drift.json"
    proc = bench("tokenizer_drift", str(quick_run_dir), "--frames", "64", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["from_epoch"] < row["to_epoch"]
    # the tokenizer trains every epoch of the quick preset, so some ids move, but not all
    assert 0.0 < row["tokens_changed"] < 1.0
    assert 1 <= row["codes_used"] <= 512

    latest = json.loads((quick_run_dir / "checkpoints" / "LATEST.json").read_text())["name"]
    same = quick_run_dir / "checkpoints" / latest / "state.pt"
    proc = bench(
        "tokenizer_drift", str(quick_run_dir), "--frames", "64", "--states", str(same), str(same)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[1].split()[-2] == "0.000"  # a tokenizer against itself


def test_run_without_checkpoint_is_one_line(tmp_path):
    proc = bench("tokenizer_drift", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "has no committed checkpoint yet" in proc.stderr


def test_wm_fit_scores_against_repeating_the_previous_frame(quick_run_dir):
    proc = bench("wm_fit", str(quick_run_dir), "--updates", "4", "--every", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("update ")]
    assert [line.split(":")[0] for line in lines] == ["update 2", "update 4"]
    for line in lines:
        accuracy = float(line.split("held-out token accuracy ")[1].split()[0])
        repeat = float(line.split("(repeat previous ")[1].split(")")[0])
        assert 0.0 <= accuracy <= 1.0 and 0.0 <= repeat <= 1.0


def test_wm_fit_copy_task_keeps_the_asked_share(quick_run_dir):
    proc = bench("wm_fit", str(quick_run_dir), "--updates", "1", "--copy-task", "0.25")
    assert proc.returncode == 0, proc.stderr[-2000:]
    repeat = float(proc.stdout.split("(repeat previous ")[1].split(")")[0])
    assert 0.72 < repeat < 0.9  # kept tokens, plus redraws of the same code (1 in #codes)


def test_wm_fit_bad_input_is_one_line(quick_run_dir, tmp_path):
    for args, message in (
        ((str(tmp_path / "none"),), "does not exist"),
        ((str(quick_run_dir), "tokenizer.vocab_size=3"), "only world_model.KEY=VALUE"),
        ((str(quick_run_dir), "world_model.num_heads=3"), "divisible by world_model.num_heads"),
    ):
        proc = bench("wm_fit", *args, "--updates", "1")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.startswith("rem diagnose wm-fit: error:") and message in proc.stderr
