"""Aggregate metrics on human-normalised scores, with rliable's definitions.

For a balanced score set (every game has n runs) the point estimates are computed by
rliable itself on its (runs x games) matrix, so they are rliable's numbers bit for bit.

Ragged score sets (unequal run counts per game, e.g. the no-pop ablation on all 26 games)
have no (runs x games) matrix: padding would invent runs and truncating would drop real
ones. We generalise rliable's definitions so that every game keeps the same total weight,
as it has in a balanced matrix:
- mean, median, superhuman: of per-game means (rliable already averages runs per game);
- optimality gap, performance profile: the average over games of the per-game fraction
  (or clipped mean) over that game's runs;
- IQM: the 25% trimmed mean of the pooled scores where each run of game g is counted
  L / n_g times (L = lcm of the run counts), i.e. scipy's trim_mean on a balanced set.
With equal run counts every one of these reduces exactly to rliable's definition.
Probability of improvement is per game already (Mann-Whitney U / (n_x n_y)), so unequal
counts need no choice there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rliable import metrics as rly_metrics

from rem.results.stats.types import Scores

# Output order and names of the aggregate metrics (aggregates.csv `metric` column).
METRICS = ("mean", "median", "iqm", "optimality_gap", "superhuman")
METRIC_LABELS = {
    "mean": "Mean",
    "median": "Median",
    "iqm": "IQM",
    "optimality_gap": "Optimality Gap",
    "superhuman": "#Superhuman",
}


@dataclass(frozen=True)
class Layout:
    """A score set flattened in rliable's run-major order.

    Element (r, g) exists for r < n_g and is stored at position sum over earlier (r', g')
    pairs; for a balanced set this is `matrix.ravel()` of the (runs, games) matrix, which is
    what makes our bootstrap draw the same indices as rliable's.

    values (N,): scores in run-major order; game (N,): game index of each element;
    highs (N,): run count of the element's game; pool (N,): scores in game-major order;
    offsets (G,): where each game starts in `pool`; counts (G,): run counts.
    """

    values: np.ndarray
    game: np.ndarray
    highs: np.ndarray
    pool: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray

    @property
    def num_games(self) -> int:
        return len(self.counts)

    @property
    def balanced(self) -> bool:
        return bool(np.all(self.counts == self.counts[0]))

    @property
    def iqm_copies(self) -> np.ndarray:
        """(N,) how often each run is counted in the IQM so that every game weighs the same."""
        lcm = math.lcm(*(int(c) for c in self.counts))
        return (lcm // self.counts)[self.game]


def layout(scores: Scores) -> Layout:
    counts = np.array([len(scores.runs[g]) for g in scores.games], dtype=np.int64)
    if np.any(counts == 0):
        empty = [g for g in scores.games if len(scores.runs[g]) == 0]
        raise ValueError(f"{scores.name}: no runs for games {empty}")
    pool = np.concatenate([scores.runs[g] for g in scores.games])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    game, run = [], []
    for r in range(int(counts.max())):
        for g in range(len(counts)):
            if r < counts[g]:
                game.append(g)
                run.append(r)
    game = np.asarray(game, dtype=np.int64)
    values = pool[offsets[game] + np.asarray(run, dtype=np.int64)]
    return Layout(values, game, counts[game], pool, offsets, counts)


def batch_aggregates(x: np.ndarray, lay: Layout, ragged: bool | None = None) -> np.ndarray:
    """All aggregate metrics for many score sets at once.

    x: (reps, N) scores in `lay`'s run-major order (one row per bootstrap resample).
    ragged: force the general (unequal run counts) code path; by default only when needed.
    Returns (reps, len(METRICS)) in METRICS order.
    """
    reps, n = x.shape
    num_games = lay.num_games
    if not (lay.balanced if ragged is None else not ragged):
        per_game = np.empty((reps, num_games))
        clipped_game = np.empty((reps, num_games))
        for g in range(num_games):
            cols = x[:, lay.game == g]
            per_game[:, g] = cols.mean(axis=1)
            clipped_game[:, g] = np.minimum(cols, 1.0).mean(axis=1)
        clipped = clipped_game.mean(axis=1)
        iqm = _weighted_trim_mean(x, lay.iqm_copies)
    else:
        runs = int(lay.counts[0])
        per_game = x.reshape(reps, runs, num_games).mean(axis=1)
        clipped = np.minimum(x, 1.0).mean(axis=1)
        iqm = batch_iqm(x)
    out = np.empty((reps, len(METRICS)))
    out[:, 0] = per_game.mean(axis=1)
    out[:, 1] = np.median(per_game, axis=1)
    out[:, 2] = iqm
    out[:, 3] = 1.0 - clipped
    out[:, 4] = (per_game >= 1.0).sum(axis=1)
    return out


def batch_iqm(x: np.ndarray) -> np.ndarray:
    """x: (reps, N) balanced score sets -> (reps,) IQM: rliable's `aggregate_iqm`, i.e.
    scipy's 25% trim_mean of all N run-game scores (the order of the N does not matter)."""
    n = x.shape[1]
    cut = int(0.25 * n)  # scipy.stats.trim_mean's rule
    return np.sort(x, axis=1)[:, cut : n - cut].mean(axis=1)


def _weighted_trim_mean(x: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """25% trimmed mean of each row with element i repeated copies[i] times, without copying.

    x: (reps, N); copies: (N,) positive ints. In the sorted, expanded row element i occupies
    positions [C_i - c_i, C_i); we keep the overlap with [cut, total - cut).
    """
    total = int(copies.sum())
    cut = int(0.25 * total)
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    c = copies[order]
    end = np.cumsum(c, axis=1)
    start = end - c
    kept = np.clip(np.minimum(end, total - cut) - np.maximum(start, cut), 0, None)
    return (xs * kept).sum(axis=1) / (total - 2 * cut)


def superhuman_count(scores: Scores) -> int:
    """Games whose mean human-normalised score reaches human level (>= 1)."""
    return int(sum(np.mean(scores.runs[g]) >= 1.0 for g in scores.games))


def point_aggregates(scores: Scores) -> np.ndarray:
    """(len(METRICS),) point estimates; rliable's own functions when the set is balanced."""
    if scores.balanced:
        m = scores.matrix()
        return np.array(
            [
                rly_metrics.aggregate_mean(m),
                rly_metrics.aggregate_median(m),
                rly_metrics.aggregate_iqm(m),
                rly_metrics.aggregate_optimality_gap(m, gamma=1),
                superhuman_count(scores),
            ],
            dtype=np.float64,
        )
    lay = layout(scores)
    return batch_aggregates(lay.values[None, :], lay)[0]


def point_profile(scores: Scores, taus: np.ndarray) -> np.ndarray:
    """(T,) fraction of runs with score > tau (rliable's score distribution)."""
    if scores.balanced:
        # Imported here: rliable.library loads arch and statsmodels (~1 s), which only the
        # profiles need (the seed planner does not).
        from rliable import library as rly_library

        return np.asarray(rly_library.score_distributions(scores.matrix(), taus), dtype=float)
    lay = layout(scores)
    return batch_profiles(lay.values[None, :], lay, taus)[0]


def batch_profiles(
    x: np.ndarray, lay: Layout, taus: np.ndarray, ragged: bool | None = None
) -> np.ndarray:
    """x: (reps, N) run-major scores -> (reps, T) fraction of runs above each tau."""
    above = x[:, :, None] > taus[None, None, :]  # (reps, N, T)
    if lay.balanced if ragged is None else not ragged:
        return above.sum(axis=1) / x.shape[1]
    per_game = np.empty((x.shape[0], lay.num_games, len(taus)))
    for g in range(lay.num_games):
        sel = lay.game == g
        per_game[:, g] = above[:, sel].sum(axis=1) / sel.sum()
    return per_game.mean(axis=1)


def point_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y): per game Mann-Whitney U / (n_x n_y), averaged over games (rliable)."""
    if x.games != y.games:
        raise ValueError(f"{x.name} and {y.name} cover different games")
    if x.balanced and y.balanced:
        return float(rly_metrics.probability_of_improvement(x.matrix(), y.matrix()))
    # Ragged: rliable's function per game on (runs, 1) columns, then the same average.
    per_game = [
        rly_metrics.probability_of_improvement(x.runs[g][:, None], y.runs[g][:, None])
        for g in x.games
    ]
    return float(np.mean(per_game))


def batch_improvement(x: np.ndarray, lx: Layout, y: np.ndarray, ly: Layout) -> np.ndarray:
    """x: (reps, Nx), y: (reps, Ny) run-major resamples -> (reps,) P(X > Y)."""
    per_game = np.empty((x.shape[0], lx.num_games))
    for g in range(lx.num_games):
        xg = x[:, lx.game == g]  # (reps, nx)
        yg = y[:, ly.game == g]  # (reps, ny)
        gt = (xg[:, :, None] > yg[:, None, :]).sum(axis=(1, 2))
        eq = (xg[:, :, None] == yg[:, None, :]).sum(axis=(1, 2))
        per_game[:, g] = (gt + 0.5 * eq) / (xg.shape[1] * yg.shape[1])
    return per_game.mean(axis=1)
