#!/usr/bin/env python3
"""Collect every run's final score into one tidy CSV table.

    python collect_scores.py --published results/published --out scores.csv \
        VARIANT:GAME:SEED:SCORE_JSON ...

Columns: variant, game, seed, raw_score, hns, episodes. `raw_score` is the mean return over the
run's final evaluation episodes (the Atari 100k protocol's per-run score); `hns` is the human-
normalised score (raw - random) / (human - random) with the references in results/published.
A score file without returns, or with a game/seed that does not match its run, stops the
collection with the file named.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from rem.results.runs import ScoreError, read_score
from rem.results.scores import load_references
from rem.utils.atomic import atomic_write_text

COLUMNS = ("variant", "game", "seed", "raw_score", "hns", "episodes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--published", required=True, help="folder with RANDOM.json, HUMAN.json")
    parser.add_argument("--out", required=True, help="CSV table to write")
    parser.add_argument("runs", nargs="+", metavar="VARIANT:GAME:SEED:SCORE_JSON")
    args = parser.parse_args(argv)
    refs = load_references(args.published)
    rows = []
    try:
        for item in args.runs:
            variant, game, seed, path = item.split(":", 3)
            raw, episodes = read_score(Path(path), variant, game, int(seed))
            hns = float(refs.hns(game, raw))
            rows.append((variant, game, int(seed), raw, hns, episodes))
    except ScoreError as err:
        print(f"collect_scores: error: {err}", file=sys.stderr)
        return 1
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for variant, game, seed, raw, hns, episodes in rows:
        writer.writerow((variant, game, seed, repr(raw), repr(hns), episodes))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, buf.getvalue())
    print(f"collect_scores: {len(rows)} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
