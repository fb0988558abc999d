"""The workflow end to end on this machine (real `rem train`, real Snakemake, CPU).

A reduced quick DAG (REM and one ablation on one game and one seed, quick preset) through the
README's command shape `snakemake --cores 2 --configfile ...`, with every training run killed
right after its epoch-2 checkpoint on the first attempt: Snakemake must retry the job, the run
must resume from that checkpoint, and the collect and report rules must finish. The full quick
DAG (2 games x 2 seeds x 2 variants) runs through SLURM in test_workflow_slurm.py; together
the two keep CI's share of training under ~15 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
QUICK = ROOT / "config" / "quick.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

GAME = "Assault"
VARIANTS = ("rem", "no-action-input")


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 1500):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quick")
    cfg = yaml.safe_load(QUICK.read_text())
    cfg["variants"] = [{"name": v, "games": [GAME]} for v in VARIANTS]
    cfg["seeds"] = [0]
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    # The trainer's fault hook: SIGKILL itself right after the epoch-2 checkpoint, once per
    # process; the retry resumes at epoch 3 and never reaches that point again.
    env = {**os.environ, "REM_TEST_KILL_AT": "after_checkpoint:2", "OMP_NUM_THREADS": "1"}
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(config), env=env)
    return workdir, config, cfg, proc


def test_quick_dag_runs_to_the_report(quick_run):
    workdir, _, cfg, proc = quick_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    results = workdir / cfg["results_dir"]
    rows = list(csv.DictReader((results / "scores.csv").open()))
    assert [(r["variant"], r["game"], r["seed"]) for r in rows] == [
        ("no-action-input", GAME, "0"),
        ("rem", GAME, "0"),
    ]
    for row in rows:
        scores = json.loads(
            (workdir / cfg["runs_dir"] / row["variant"] / GAME / "0" / "scores.json").read_text()
        )
        assert float(row["raw_score"]) == pytest.approx(
            sum(scores["returns"]) / len(scores["returns"])
        )
        assert int(row["episodes"]) == len(scores["returns"]) == 3  # quick: final_episodes 3
    report = results / "report"
    for name in ("reproduction.md", "per_game.csv", "aggregates.csv", "learning_curves.png"):
        assert (report / name).stat().st_size > 0, name
    assert "no-action-input" in (report / "reproduction.md").read_text()


def test_killed_training_job_is_retried_and_resumes(quick_run):
    workdir, _, cfg, proc = quick_run
    assert proc.returncode == 0, proc.stderr[-8000:]
    for variant in VARIANTS:
        run = workdir / cfg["runs_dir"] / variant / GAME / "0"
        manifest = json.loads((run / "manifest.json").read_text())
        assert [s["from_epoch"] for s in manifest["sessions"]] == [0, 2], manifest["sessions"]
        lines = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        epochs = [m["epoch"] for m in lines if "final" not in m]
        assert epochs == [1, 2, 3, 4, 5, 6]  # epochs after the kill were not repeated twice
        logs = workdir / cfg["logs_dir"] / "train" / variant / GAME
        assert (logs / "0.attempts.log").read_text().count("== job start") == 2  # both attempts
        assert "from the checkpoint of epoch 2" in (logs / "0.log").read_text()  # the retry's
        assert (run / "COMPLETED").exists()


def test_finished_dag_is_up_to_date_and_reevaluation_does_not_retrain(quick_run):
    workdir, config, cfg, proc = quick_run
    assert proc.returncode == 0, proc.stderr[-8000:]
    again = snakemake(workdir, "-n", "--configfile", str(config))
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    cfg = {**cfg, "evaluation": {"episodes": 1, "seed": 5}}
    reeval = workdir / "reeval.yaml"
    reeval.write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(reeval))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    assert "rule train" not in proc.stdout + proc.stderr
    rows = list(csv.DictReader((workdir / cfg["results_dir"] / "scores.csv").open()))
    assert [r["episodes"] for r in rows] == ["1", "1"]
    for variant in VARIANTS:
        out = workdir / cfg["results_dir"] / "evaluations" / variant / GAME / "0.json"
        assert len(json.loads(out.read_text())["returns"]) == 1


def test_snakemake_html_report(quick_run):
    workdir, config, cfg, proc = quick_run
    assert proc.returncode == 0, proc.stderr[-8000:]
    html = workdir / "report.html"
    out = snakemake(workdir, "--configfile", str(config), "--report", str(html))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    text = html.read_text()
    assert "learning_curves.png" in text and "reproduction.md" in text
