"""Preliminary results on a half-finished quick sweep (issue 13, point 2).

The sweep is built from the session's real quick-preset run (`quick_run_dir`, Breakout seed
3): one finished run, one killed mid-training (metrics but no COMPLETED marker), one caught
between its score file and its marker, and one never started. `rem results report --partial`
and the Snakemake `partial` target must aggregate the finished run only, label everything
PRELIMINARY with its coverage, never train or wait, and leave the final report alone.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rem.results.commands import main as cli_main
from rem.results.reports.reproduction import write_partial_report
from rem.results.reports.studies import study_outputs
from rem.results.settings import ResultsConfig
from rem.runs.layout import RunKey

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"reps_aggregates": 100, "reps_improvement": 10}
EXPECTED = [RunKey("rem", "Breakout", s) for s in (3, 4, 5)] + [
    RunKey("no-action-input", "Breakout", 3)
]


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "media"))
    return dst


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, quick_run_dir) -> Path:
    work = tmp_path_factory.mktemp("sweep")
    runs = work / "runs"
    copy_run(quick_run_dir, runs / "rem" / "Breakout" / "3")  # finished
    killed = copy_run(quick_run_dir, runs / "rem" / "Breakout" / "4")
    for name in ("COMPLETED", "scores.json"):
        (killed / name).unlink()
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    (killed / "metrics.jsonl").write_text("\n".join(lines[:2]) + '\n{"epoch": 3, "tok')
    finishing = copy_run(quick_run_dir, runs / "rem" / "Breakout" / "5")
    (finishing / "COMPLETED").unlink()  # scores.json written, marker not yet
    return work


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_partial_report_of_a_half_finished_sweep(sweep):
    out = sweep / "results" / "partial"
    cfg = ResultsConfig(**SMALL)
    written = write_partial_report(sweep / "runs", EXPECTED, out, cfg)
    assert sorted(p.name for p in written.files) == sorted(study_outputs("partial"))
    coverage = {(r["variant"], r["game"]): (r["finished"], r["expected"])
                for r in rows(out / "coverage.csv")}  # fmt: skip
    assert coverage == {
        ("rem", "Breakout"): ("1", "3"),
        ("no-action-input", "Breakout"): ("0", "1"),
    }
    scores = rows(out / "scores.csv")
    assert [(r["variant"], r["seed"]) for r in scores] == [("rem", "3")]
    md = (out / "reproduction.md").read_text()
    assert md.startswith("# Reproduction report (PRELIMINARY)")
    assert "**PRELIMINARY: 1 of 4 runs finished: no-action-input 0/1, rem 1/3.**" in md
    assert "| rem | 1 of 3 | Breakout 1 of 3 |" in md
    assert "## rem (1 game: Breakout)" in md and "3.3 (n=1 of 3)" in md
    # Every table says preliminary and its coverage; every page too.
    for name in ("aggregates.csv", "per_game.csv", "runs.csv", "probability_of_improvement.csv",
                 "scores.csv", "coverage.csv", "protocol_mismatches.csv"):  # fmt: skip
        table = rows(out / name)
        assert table and all(r["status"] == "preliminary" for r in table), name
    agg = {r["algorithm"]: r["coverage"] for r in rows(out / "aggregates.csv")}
    assert agg == {"ours (rem)": "1 of 3 runs", "published (rem)": "published runs"}
    assert "PRELIMINARY" in (out / "protocols.md").read_text()
    # The quick preset's protocol differs from the paper's, and the report says how.
    assert "**Protocol warnings**" in md
    warning = next(line for line in md.splitlines() if line.startswith("- ours (rem) vs"))
    for part in ("test episodes per run 3 vs 100", "agent steps of training 500 vs 100,000",
                 "test episode cap 1000 raw frames vs 108000 raw frames"):  # fmt: skip
        assert part in warning
    assert "sticky" not in warning  # both without sticky actions: no warning
    # File names are relative (to the project root, else to the report): no machine paths.
    for path in out.iterdir():
        if path.suffix in (".md", ".csv"):
            assert str(sweep) not in path.read_text(), path.name
    assert "Run folders under `../../runs`" in md
    assert (out / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    # The final report's folder is untouched.
    assert not (sweep / "results" / "report").exists()


def test_partial_report_with_no_finished_run_is_written(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    out = tmp_path / "partial"
    write_partial_report(runs, EXPECTED, out, ResultsConfig(**SMALL))
    md = (out / "reproduction.md").read_text()
    assert "0 of 4 runs finished" in md and "No run has finished yet" in md
    assert rows(out / "scores.csv") == []
    for name in study_outputs("partial"):
        assert (out / name).is_file(), name


def test_partial_cli_reads_the_expected_runs_from_the_config(sweep, tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "preset": "quick", "seeds": [3, 4, 5],
        "variants": [{"name": "rem", "games": ["Breakout"]},
                     {"name": "no-action-input", "games": ["Breakout"], "seeds": [3]}],
        "runs_dir": str(sweep / "runs"), "results_dir": str(tmp_path / "res"),
        "results": {"reps_aggregates": 50, "reps_improvement": 10},
    }))  # fmt: skip
    code = cli_main(["report", "--partial", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = tmp_path / "res" / "partial"
    assert "1 of 4 runs finished" in (out / "reproduction.md").read_text()
    assert "protocol mismatches: preliminary reproduction report" in captured.err
    # Bad input: one line, exit 2.
    code = cli_main(["report", "--partial", "--runs-dir", str(tmp_path / "nope"), "--expected",
                     "rem:Breakout:3", "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "runs folder not found" in err
    code = cli_main(["report", "--partial", "--expected", "rem:Breakout", "--runs-dir", str(sweep)])
    assert code == 2 and "expected VARIANT:GAME:SEED" in capsys.readouterr().err
    code = cli_main(["report", "--runs-dir", str(sweep)])
    assert code == 2 and "missing --scores" in capsys.readouterr().err


@pytest.mark.slow
def test_snakemake_partial_target_never_trains_and_reruns_when_a_run_finishes(
    sweep, quick_run_dir, tmp_path
):
    work = tmp_path / "work"
    shutil.copytree(sweep / "runs", work / "runs")
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "preset": "quick", "seeds": [3, 4, 5],
        "variants": [{"name": "rem", "games": ["Breakout"]},
                     {"name": "no-action-input", "games": ["Breakout"], "seeds": [3]}],
        "runs_dir": "runs", "results_dir": "results/runs", "logs_dir": "logs",
        "results": {"reps_aggregates": 50, "reps_improvement": 10},
    }))  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def snakemake(*args: str):
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(work), "partial", "--cores", "1", "--configfile", str(config),
               *args]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)

    proc = snakemake()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "rule train" not in log and "rule report_partial" in log
    assert "protocol mismatches: preliminary reproduction report" in proc.stderr  # terminal
    partial = work / "results" / "runs" / "partial"
    assert "1 of 4 runs finished" in (partial / "reproduction.md").read_text()
    assert not (work / "results" / "runs" / "report").exists()  # the final report: untouched
    again = snakemake("-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # Another run finishes: the target runs again, still without training anything.
    done = copy_run(quick_run_dir, work / "runs" / "no-action-input" / "Breakout" / "3")
    scores = json.loads((done / "scores.json").read_text())
    (done / "scores.json").write_text(json.dumps({**scores, "variant": "no-action-input"}))
    proc = snakemake()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert "rule train" not in proc.stdout + proc.stderr
    assert "2 of 4 runs finished" in (partial / "reproduction.md").read_text()
