"""Snakemake `script:` of rule pilot_report: the pilot's figures and rules
(rem.results.reports.pilot), its cost and disk (rem.ops.pilot), rendered by rem.results.reports.pilot_report."""

import sys
from pathlib import Path

from rem.ops.pilot import pilot_cost, pilot_disk
from rem.results.reports.pilot import build
from rem.results.reports.pilot_report import write

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
with open(snakemake.log[0], "w") as log:
    sys.stderr = sys.stdout = log
    p = snakemake.params
    runs = [Path(r) for r in p.runs]
    variant = runs[0].parents[1].name
    pilot = build(
        runs,
        Path(p.wm_root) / variant,
        Path(p.random_dir),
        Path(p.published),
        list(p.wm_epochs),
        max(p.wm_epochs),
    )
    pilot.cost = pilot_cost(runs, Path(p.solo) if p.solo else None, p.runs_per_gpu, p.gpus)
    pilot.disk = pilot_disk(runs)
    if pilot.preset != "paper":
        pilot.notes.append(
            f"preset {pilot.preset}, not the paper's: a pipeline check; its rules and figures "
            "say nothing about learning"
        )
    write(pilot, Path(snakemake.output.markdown).parent)
    print(Path(snakemake.output.markdown).read_text())
