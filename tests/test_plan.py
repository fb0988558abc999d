"""`rem plan`: GPU-hours and wall-clock before launch, from measured times.

Benchmark files here are written in the format `python -m benchmarks epoch --json` writes
(schema rem-bench/1), with chosen phase times so the arithmetic can be checked; the
finished-runs measurement uses the session's real quick run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from training_helpers import GAME, SEED

from rem.ops.plan import wall_clock

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "config" / "quick.yaml"
PHASES_H = {  # one paper run by phase, hours: 5.5 h in all
    "collection": 0.5,
    "tokenizer": 1.0,
    "world_model": 2.0,
    "actor_critic": 1.5,
    "evaluations": 0.4,
    "final_evaluation": 0.1,
}


def _bench(path: Path, size: str = "paper", device: str = "cuda", load: float = 0.5) -> Path:
    machine = {"loadavg_1_5_15": [load, load, load], "cpus_usable": 2, "cpu": "AMD EPYC"}
    if device == "cuda":
        machine["cuda_device"] = "NVIDIA H100 80GB HBM3"
    payload = {
        "schema": "rem-bench/1",
        "complete": True,
        "finished_utc": "2026-11-30T10:00:00+00:00",
        "options": {"device": device, "sizes": [size]},
        "machine": machine,
        "results": [
            {
                "suite": "epoch",
                "name": "composed_epoch",
                "size": size,
                "device": device,
                "derived": {
                    "run_by_phase_h": PHASES_H,
                    "run_600_epochs_s": 5.5 * 3600,
                    "evaluation_assumption": "16 episodes of 300 agent steps",
                },
            }
        ],
    }
    path.write_text(json.dumps(payload))
    return path


def _plan(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rem", "plan", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_wall_clock_places_the_longest_runs_first():
    assert wall_clock([1.0] * 10, 3) == 4.0  # 4 waves
    assert wall_clock([4.0, 1.0, 1.0, 1.0, 1.0], 2) == 4.0  # the short ones fill the other slot
    assert wall_clock([], 4) == 0.0


def test_paper_config_from_a_gpu_benchmark(tmp_path):
    bench = _bench(tmp_path / "h100.json")
    proc = _plan(tmp_path, "--gpus", "8", "--bench", str(bench), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert sum(plan["runs"].values()) == 330 and plan["runs"]["rem"] == 130
    m = plan["measurement"]
    assert m["device"] == "NVIDIA H100 80GB HBM3 (cuda)" and str(bench) in m["source"]
    assert m["per_run_s"]["no-pop"] == pytest.approx(5.5 * 3600)
    (p,) = plan["placements"]  # one run per GPU: one figure, no sharing slowdown
    assert p["gpu_hours"] == pytest.approx(330 * 5.5)
    assert p["wall_s"] / 3600 == pytest.approx(42 * 5.5)  # ceil(330 / 8) waves
    text = _plan(tmp_path, "--gpus", "8", "--bench", str(bench)).stdout
    assert "measurement: benchmark" in text and "device: NVIDIA H100 80GB HBM3 (cuda)" in text
    assert "GPU-hours   1,815 h" in text and "every variant is assumed to cost the same" in text


def test_several_runs_per_gpu_give_a_range_unless_the_slowdown_is_known(tmp_path):
    bench = _bench(tmp_path / "h100.json")
    plan = json.loads(
        _plan(
            tmp_path, "--gpus", "8", "--runs-per-gpu", "4", "--bench", str(bench), "--json"
        ).stdout
    )
    best, worst = plan["placements"]
    assert (best["slowdown"], worst["slowdown"]) == (1.0, 4.0)
    assert best["gpu_hours"] == pytest.approx(330 * 5.5 / 4)  # a quarter GPU per run
    assert best["wall_s"] / 3600 == pytest.approx(11 * 5.5)  # ceil(330 / 32) waves
    assert worst["gpu_hours"] == pytest.approx(330 * 5.5)  # no gain when the GPU is busy
    plan = json.loads(
        _plan(tmp_path, "--gpus", "8", "--runs-per-gpu", "4", "--slowdown", "2", "--bench",
              str(bench), "--json").stdout
    )  # fmt: skip
    (p,) = plan["placements"]
    assert p["gpu_hours"] == pytest.approx(330 * 5.5 * 2 / 4)


def test_a_reduced_cpu_benchmark_is_scaled_and_says_so(tmp_path):
    bench = _bench(tmp_path / "cpu.json", size="reduced", device="cpu", load=9.0)
    proc = _plan(tmp_path, "--gpus", "1", "--bench", str(bench), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    m = plan["measurement"]
    assert m["on_cpu"] and any("measured on a CPU" in note for note in plan["notes"])
    train = PHASES_H["tokenizer"] + PHASES_H["world_model"] + PHASES_H["actor_critic"]
    rest = sum(PHASES_H.values()) - train
    assert m["per_run_s"]["rem"] == pytest.approx((8 * train + rest) * 3600)
    assert any("scaled x8" in note for note in m["notes"]) and m["device"] == "AMD EPYC (cpu)"
    gpu = _bench(tmp_path / "gpu.json", size="reduced", device="cuda")
    proc = _plan(tmp_path, "--gpus", "1", "--bench", str(gpu))
    assert proc.returncode == 2 and "does not scale with the batch" in proc.stderr


def test_finished_runs_are_the_measurement_first(tmp_path, quick_run_dir):
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(
        runs_dir="runs",
        variants=[
            {"name": "rem", "games": [GAME], "seeds": [SEED]},  # the session's quick run
            {"name": "no-action-input", "games": [GAME], "seeds": [0, 1]},
        ],
    )
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(quick_run_dir, tmp_path / "runs" / "rem" / GAME / str(SEED))
    bench = tmp_path / "bench"
    bench.mkdir()
    proc = _plan(tmp_path, "--configfile", "c.yaml", "--gpus", "1", "--json", "--bench-dir",
                 str(bench))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    m = plan["measurement"]
    assert m["source"].startswith("1 finished run(s) in runs") and "(1 runs)" in m["device"]
    metrics = [json.loads(x) for x in (quick_run_dir / "metrics.jsonl").read_text().splitlines()]
    final = next(r for r in metrics if r.get("final"))
    trained = next(r["time/elapsed"] for r in reversed(metrics) if "time/elapsed" in r)
    assert m["per_run_s"] == {"rem": pytest.approx(trained + final["final/eval_seconds"])}
    (p,) = plan["placements"]
    assert p["run_hours"] == pytest.approx(3 * m["default_s"] / 3600)  # 3 runs, one measured
    assert any("no own measurement for no-action-input" in n for n in plan["notes"])
    assert "trains on CPU" in " ".join(plan["notes"])


def test_nothing_measured_prints_the_published_claim_and_how_to_measure(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "other.json").write_text('{"schema": "rem-bench/1", "results": []}')
    proc = _plan(tmp_path, "--gpus", "8", "--bench-dir", str(tmp_path / "bench"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "measurement: published claim, not measured here: Cohen et al., ICML 2024" in out
    assert "under 12 hours per run on one GPU" in out
    assert "one run: rem 12.0 h" in out  # the claim itself, 600 epochs
    assert "no finished run in runs" in out and "1 file(s) did not fit" in out
    for command in ("snakemake pilot --configfile config/pilot.yaml",
                    "python -m benchmarks gpu-check --json",
                    "python -m benchmarks epoch --device cuda --sizes paper"):  # fmt: skip
        assert command in out
    # 330 runs x 12 h, every variant taking REM's claim (said so)
    assert "GPU-hours   3,960 h" in out
    assert "no-pop 12.0 h" in out  # an ablation of REM costs as REM (its agent)
    assert "disk: LOWER BOUND from raw frame bytes and parameter counts" in out
    assert "whole config (330 runs)" in out and "free in runs" in out


def _pilot_json(path: Path, slowdown: dict | None = None) -> Path:
    cost = {
        "epoch_phase_s": {
            "collection": 2.0,
            "tokenizer": 10.0,
            "world_model": 20.0,
            "actor_critic": 30.0,
        },  # fmt: skip
        "evaluation_s": 16.0,
        "eval_episode_s": 1.0,
        "device": "NVIDIA H100 80GB HBM3",
        "device_type": "cuda",
        "runs_per_gpu": 3,
        "slowdown": slowdown or {},
    }
    path.write_text(json.dumps({"preset": "paper", "runs": 3, "cost": cost}))
    return path


def test_a_pilot_prices_each_run_from_its_measured_phase_units(tmp_path):
    pilot = _pilot_json(tmp_path / "pilot.json", slowdown={"3": 1.5})
    proc = _plan(tmp_path, "--gpus", "8", "--pilot", str(pilot), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    m = plan["measurement"]
    assert m["source"].startswith("pilot ") and m["device"] == "NVIDIA H100 80GB HBM3"
    # paper schedule: collection 500 epochs, tokenizer 595, WM 575, AC 550; 60 evaluations
    # of 16 episodes + the final 100, one second each
    expected = 500 * 2 + 595 * 10 + 575 * 20 + 550 * 30 + 60 * 16 + 100
    assert m["per_run_s"]["rem"] == pytest.approx(expected)
    packed = _plan(tmp_path, "--gpus", "8", "--pilot", str(pilot), "--runs-per-gpu", "3",
                   "--json")  # fmt: skip
    (p,) = json.loads(packed.stdout)["placements"]
    assert p["slowdown"] == 1.5  # measured, so no 1..K range
    assert p["gpu_hours"] == pytest.approx(330 * expected * 1.5 / 3 / 3600)


def test_disk_from_a_finished_run_and_a_sweep_that_does_not_fit(
    tmp_path, quick_run_dir, monkeypatch, capsys
):
    import rem.training.disk as disk
    from rem.cli import main as rem_main

    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(runs_dir=str(tmp_path / "runs"), variants=[{"name": "rem", "games": [GAME]}],
               seeds=[SEED, 7])  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(quick_run_dir, tmp_path / "runs" / "rem" / GAME / str(SEED))
    monkeypatch.setattr(disk, "free_bytes", lambda path: 1_000_000)
    code = rem_main(["plan", "--configfile", str(tmp_path / "c.yaml"), "--gpus", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "disk: from 1 finished run(s) in" in out and "KB per agent step" in out
    assert "one rem run: " in out and "WILL NOT FIT" in out and "1.0 MB free" in out
    monkeypatch.setattr(disk, "free_bytes", lambda path: 10**12)
    assert rem_main(["plan", "--configfile", str(tmp_path / "c.yaml"), "--gpus", "1"]) == 0
    assert "whole config (2 runs)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "0"], "--gpus 0: give the number of GPUs"),
        (["--gpus", "2", "--bench", "nope.json"], "benchmark file nope.json: No such file"),
        (["--gpus", "2", "--bench", "bad.json"], "bad.json is not JSON"),
        (["--gpus", "2", "--bench", "other.json"], "is not a `python -m benchmarks` JSON"),
        (["--gpus", "2", "--runs-per-gpu", "0"], "--runs-per-gpu 0: at least 1"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "other.json").write_text('{"results": []}')
    proc = _plan(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rem plan: error: ") and message in lines[0]
