"""`python -m benchmarks gpu-check` on a CPU at tiny sizes: every part runs, the JSON holds
what `rem plan` reads (its measured epoch and packing slowdowns). The GPU figures themselves
are measured only on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1800)
def test_gpu_check_on_cpu_at_tiny_sizes(tmp_path):
    out = tmp_path / "gc.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "gpu-check", "--json", str(out), "--device", "cpu",
         "--budget-s", "20", "--pilot-epochs", "1", "--packing", "1,2"],
        capture_output=True, text=True, timeout=1700, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    payload = json.loads(out.read_text())
    assert payload["schema"] == "rem-bench/1" and payload["options"]["sizes"] == ["tiny"]
    names = {r["name"] for r in payload["results"]}
    assert {"composed_epoch", "measured_epoch", "unit_world_model"} <= names
    g = payload["gpu_check"]
    assert g["fast_paths"] == {"tried": False, "why": "--fast-paths auto on cpu"}
    assert set(g["packing"]["runs"]) == {"1", "2"}  # the default also times 4
    assert g["slowdown"]["1"] == 1.0 and all(v > 0 for v in g["slowdown"].values())
    assert g["packing"]["throughput"]["2"] == pytest.approx(2 / g["slowdown"]["2"])
    phases = g["pilot_epochs"]["epoch_phase_s"]
    assert all(phases[p] > 0 for p in ("collection", "tokenizer", "world_model", "actor_critic"))
    assert "packing slowdown: 1 per GPU x1.00" in proc.stdout
    # rem plan prices the quick config from it, with the measured slowdown at 2 per GPU
    plan = subprocess.run(
        [sys.executable, "-m", "rem", "plan", "--configfile", "config/quick.yaml", "--gpus", "1",
         "--runs-per-gpu", "2", "--bench", str(out), "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    (placement,) = json.loads(plan.stdout)["placements"]
    assert placement["slowdown"] == pytest.approx(g["slowdown"]["2"])


def test_bad_arguments_are_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "gpu-check", "--json", "x.json", "--device", "tpu"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("python -m benchmarks gpu-check: error: ")
