"""The tidy score table of the workflow (`collect` rule) and of the preliminary report: one
row per run, read from its score file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rem.runs.files import read_score
from rem.runs.layout import RunKey

if TYPE_CHECKING:  # pandas loads on use
    import pandas as pd

    from rem.results.stats.types import References

TIDY_COLUMNS = ("variant", "game", "seed", "raw_score", "hns", "episodes")


def score_table(runs: Iterable[tuple[str, str, int, str | Path]], refs: References) -> pd.DataFrame:
    """One row per run, from (variant, game, seed, score file): the TIDY_COLUMNS, sorted by
    variant, game and seed. `raw_score` is the mean return of the run's final evaluation
    episodes; `hns` its human-normalised score with `refs`. ScoreError names a bad file."""
    import pandas as pd

    rows = []
    for variant, game, seed, path in runs:
        raw, episodes = read_score(Path(path), RunKey(variant, game, int(seed)))
        rows.append((variant, game, int(seed), raw, float(refs.hns(game, raw)), episodes))
    table = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return table.sort_values(["variant", "game", "seed"], ignore_index=True)


def table_csv(table: pd.DataFrame) -> str:
    """CSV text of a table, floats at full precision (repr), no index."""
    return table.to_csv(index=False, lineterminator="\n")
