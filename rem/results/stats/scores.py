"""Scores as rliable takes them: a checked (runs x games) array to `Scores`, and raw scores
human-normalised against the reference tables after the checks for the usual traps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rem.results.stats.checks import check_games_in_table, check_matrix, check_raw
from rem.results.stats.types import References, Scores


def scores_from_matrix(array: np.ndarray, games: Sequence[str], name: str) -> Scores:
    """A checked (runs, games) array -> Scores (e.g. from rliable's own data files)."""
    a = check_matrix(array, games, name)
    return Scores(name, tuple(games), {g: a[:, i].copy() for i, g in enumerate(games)}, name)


def normalize(refs: References, scores: Scores) -> Scores:
    """Raw -> human-normalised; refuses games missing from the tables and scores that look
    normalised already (rem.results.stats.checks)."""
    check_games_in_table(scores, refs)
    check_raw(scores, refs)
    runs = {}
    for g in scores.games:
        runs[g] = (scores.runs[g] - refs.random[g]) / (refs.human[g] - refs.random[g])
    return Scores(scores.name, scores.games, runs, scores.source)
