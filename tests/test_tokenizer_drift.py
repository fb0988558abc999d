"""benchmarks/tokenizer_drift.py on a real quick run: the two committed checkpoints' tokenizers
compared on the same replay frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def drift(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.tokenizer_drift", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_drift_between_committed_checkpoints(quick_run_dir, tmp_path):
    out = tmp_path / "drift.json"
    proc = drift(str(quick_run_dir), "--frames", "64", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["from_epoch"] < row["to_epoch"]
    # the tokenizer trains every epoch of the quick preset, so some ids move, but not all
    assert 0.0 < row["tokens_changed"] < 1.0
    assert 1 <= row["codes_used"] <= 512

    latest = json.loads((quick_run_dir / "checkpoints" / "LATEST.json").read_text())["name"]
    same = quick_run_dir / "checkpoints" / latest / "state.pt"
    proc = drift(str(quick_run_dir), "--frames", "64", "--states", str(same), str(same))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[1].split()[-2] == "0.000"  # a tokenizer against itself


def test_run_without_checkpoint_is_one_line(tmp_path):
    proc = drift(str(tmp_path))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "has no committed checkpoint yet" in proc.stderr
