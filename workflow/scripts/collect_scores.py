#!/usr/bin/env python3
"""Collect every run's final score into one tidy CSV table (the workflow's `collect` rule).

Run by Snakemake's `script:` directive (inputs from the `snakemake` object), or by hand:

    python workflow/scripts/collect_scores.py --published results/published --out scores.csv \
        VARIANT:GAME:SEED:SCORE_JSON ...

Columns (rem.results.reports.tidy.TIDY_COLUMNS): variant, game, seed, raw_score, hns, episodes.
`raw_score` is the mean return over the run's final evaluation episodes (the Atari 100k
protocol's per-run score); `hns` is the human-normalised score (raw - random) / (human -
random) with the references of the published folder. A score file without returns, or with a
game/seed that does not match its run, stops the collection with the file named.
"""

# No `from __future__` import: Snakemake's `script:` directive puts its preamble first.
import argparse
import sys
from pathlib import Path

from rem.results.reports.tidy import score_table, table_csv
from rem.results.score_files import load_references
from rem.runs.files import ScoreError
from rem.utils.atomic import atomic_write_text


def collect(published: str, out: str, runs: list[tuple[str, str, int, str]]) -> int:
    """Write the table of `runs` (variant, game, seed, score file) to `out` -> exit code."""
    try:
        table = score_table(runs, load_references(published))
    except ScoreError as err:
        print(f"collect_scores: error: {err}", file=sys.stderr)
        return 1
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, table_csv(table))
    print(f"collect_scores: {len(table)} runs -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--published", required=True, help="folder with RANDOM.json, HUMAN.json")
    parser.add_argument("--out", required=True, help="CSV table to write")
    parser.add_argument("runs", nargs="+", metavar="VARIANT:GAME:SEED:SCORE_JSON")
    args = parser.parse_args(argv)
    runs = [item.split(":", 3) for item in args.runs]
    return collect(args.published, args.out, [(v, g, int(s), p) for v, g, s, p in runs])


def from_snakemake(smk) -> int:
    """The `script:` entry: inputs from the rule, output and messages into its log."""
    with open(smk.log[0], "w") as log:
        sys.stdout = sys.stderr = log
        return collect(smk.params.published, smk.output.table, list(smk.params.runs))


if __name__ == "__main__":
    if "snakemake" in globals():  # run by the workflow's `script:` directive
        sys.exit(from_snakemake(snakemake))  # noqa: F821 - injected by Snakemake
    sys.exit(main())
