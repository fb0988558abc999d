"""Snakemake `script:` of rule learning_report: rem.results.reports.learning.write_learning_report per variant."""

import sys
from pathlib import Path

from rem.results.reports.learning import write_learning_report

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
with open(snakemake.log[0], "w") as log:
    sys.stderr = sys.stdout = log
    out = Path(snakemake.output.markdown).parent
    results_dir = Path(snakemake.input.random[0]).parents[1]
    runs_dir = Path(snakemake.input.markers[0]).parents[3]
    variant = snakemake.wildcards.variant
    finals = write_learning_report(
        runs_dir, variant, results_dir / "random", results_dir / "world_model", out
    )
    print(finals.to_string(index=False))
