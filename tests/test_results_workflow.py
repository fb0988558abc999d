"""workflow/rules/paper.smk under real Snakemake: the `paper` target, config keys, extras.

The rules are included from a minimal Snakefile in a scratch folder, after common.smk and
its config check as in the project's Snakefile (which also resolves the training runs, which
this test does not need), at reduced reps.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rem.results.reports.studies import study_outputs

ROOT = Path(__file__).resolve().parents[1]


def test_snakemake_paper_target(tmp_path):
    shutil.copytree(ROOT / "results" / "published", tmp_path / "results" / "published")
    (tmp_path / "Snakefile").write_text(
        f'include: "{ROOT / "workflow/rules/common.smk"}"\n'
        f'check_config(config, "{ROOT / "workflow/schemas/config.schema.yaml"}")\n'
        'LOGS_DIR = config["logs_dir"]\n'
        f'include: "{ROOT / "workflow/rules/paper.smk"}"\n'
    )
    (tmp_path / "config.yaml").write_text(
        "preset: quick\n"
        "seeds: [0]\n"
        "variants: [{name: rem, games: [Pong]}]\n"
        "results:\n"
        "  baselines_extra: [DIAMOND, Ghost]\n"
        "  seed: 3\n"
        "  reps_aggregates: 200\n"
        "  reps_profiles: 20\n"
        "  reps_improvement: 20\n"
        "  seed_plan_reps: 500\n"
        "  seed_check_experiments: 3\n"
        "  seed_check_reps: 20\n"
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # The target goes first: --configfile takes every path that follows it.
    cmd = [sys.executable, "-m", "snakemake", "paper", "--cores", "2"]
    cfg = ["--configfile", "config.yaml"]
    proc = subprocess.run(
        [*cmd, *cfg], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    logs = "".join(p.read_text() for p in (tmp_path / "logs" / "paper").glob("*.log"))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs
    out = tmp_path / "results" / "paper"
    for name in study_outputs("main") + study_outputs("ablations") + study_outputs("seeds"):
        assert (out / name).is_file(), name
    # The seed planner's check is stored for the next call, in the workflow's folder.
    assert len(list((tmp_path / "results" / "cache" / "seed_check").glob("*.json"))) == 1
    # The protocol warnings reach the terminal (once per study), not only the logs.
    assert proc.stderr.count("protocol mismatches: main comparison") == 1
    assert "STORM vs REM: sticky-action probability 0.25 vs 0.0" in proc.stderr
    with (out / "aggregates.csv").open() as f:
        algos = {row["algorithm"] for row in csv.DictReader(f)}
    assert "DIAMOND" in algos and "Ghost" not in algos
    assert "Ghost" in logs and "does not exist" in logs  # reported missing, not a crash
    # Nothing left to do on a second call.
    again = subprocess.run(
        [*cmd, "--dry-run", *cfg], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
