"""Smoke tests of the benchmarks: `--quick` runs and writes valid JSON.

Nothing here asserts a speed: timings on a shared CI machine are not test material. The
benchmarks themselves are run by hand (`python -m benchmarks --help`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a repository folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.cli import main  # noqa: E402
from benchmarks.harness import BenchResult, measure  # noqa: E402


def test_stats_median_quartiles_and_rate():
    r = BenchResult("s", "n", "tiny", "cpu", "unit", [5.0, 1.0, 4.0, 2.0, 3.0], 10, "things")
    st = r.stats()
    assert st["repeats"] == 5
    assert st["median_s"] == 3.0 and st["min_s"] == 1.0 and st["max_s"] == 5.0
    assert (st["q1_s"], st["q3_s"]) == (2.0, 4.0)
    assert st["rel_spread"] == pytest.approx(2 / 3)
    assert st["rate_per_s"] == pytest.approx(10 / 3) and st["rate_unit"] == "things/s"


def test_measure_counts_repeats_and_reports_memory():
    calls = []
    times, mem = measure(lambda: calls.append(1), device=torch.device("cpu"), warmup=2, repeats=4)
    assert len(times) == 4 and len(calls) == 6  # warm-up runs are not timed
    assert all(t >= 0 for t in times)
    assert mem["peak_rss_mib"] > 0 and mem["rss_kind"] in {"window", "process-lifetime"}


def test_quick_run_writes_valid_json(tmp_path):
    out = tmp_path / "bench.json"
    suites = ["retention", "env", "world_model"]
    rc = main(
        [*suites, "--quick", "--repeats", "1", "--budget", "1", "--json", str(out), "--no-table"]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["schema"] == "rem-bench/1" and data["complete"] is True
    assert data["options"]["suites"] == suites and data["options"]["quick"] is True
    assert data["skipped"] == {}
    assert data["machine"]["device"] == "cpu" and data["machine"]["torch"] == torch.__version__
    names = {f"{r['suite']}/{r['name']}" for r in data["results"]}
    for expected in (
        "env/raw_ale",
        "env/train_stack",
        "env/train_stack_without_resize",
        "retention/recurrent_n65",
        "world_model/train_step_pop",
        "world_model/train_step_nopop",
    ):
        assert expected in names
    for r in data["results"]:
        st = r["stats"]
        assert st["repeats"] >= 1
        assert math.isfinite(st["median_s"]) and st["median_s"] > 0
        assert st["min_s"] <= st["median_s"] <= st["max_s"]
        assert r["memory"]["peak_rss_mib"] > 0
        assert isinstance(r["config"], dict) and r["config"]
    # the raw replay emulated the stack's own frames (the bench raises otherwise)
    stack = next(r for r in data["results"] if r["name"] == "train_stack")
    assert stack["config"]["raw_frames_per_repeat"] >= 4 * stack["config"]["agent_steps_per_repeat"]
    assert set(stack["derived"]["split_vs_raw"]) == {"wrapper_logic", "protocol_resize"}
    # the forms agree, so the speed comparison compares equal computations
    recurrent = next(r for r in data["results"] if r["name"] == "recurrent_n65")
    assert float(recurrent["derived"]["max_abs_err_vs_parallel"]) < 1e-3


def test_bad_arguments_fail_with_a_message(capsys):
    assert main(["no_such_suite"]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert main(["retention", "--sizes", "huge"]) == 2
    assert "unknown size" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["retention", "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_rem_bench_forwards_to_the_benchmarks(capsys):
    from rem.cli import main as rem_main

    assert rem_main(["bench", "no_such_suite"]) == 2
    assert "rem bench: error: unknown suite" in capsys.readouterr().err
