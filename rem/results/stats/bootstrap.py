"""Vectorised stratified bootstrap: rliable's confidence intervals in a fraction of the time.

rliable (`library.get_interval_estimates`, `create_performance_profile`) resamples, per
algorithm and per repetition, the runs of each game with replacement by calling
`np.random.choice(n_runs, (n_runs, n_games))` on NumPy's global legacy generator, then calls
the metric function once per repetition (tens of microseconds of Python each, 50,000 times).

We draw the same indices from a `RandomState(seed)` in one call per chunk of repetitions:
MT19937 hands out the same stream whether the (n_runs, n_games) blocks are requested one at
a time or stacked, so for a balanced score set our resamples are exactly rliable's after
`np.random.seed(seed)`, and the confidence intervals agree to rounding. Ragged sets (unequal
runs per game) resample each game's own n_g runs (the `highs` array), which rliable cannot
express; see rem.results.stats.aggregates for the metric definitions.

Each algorithm (or pair) gets its own generator seeded with `seed`, so its intervals do not
depend on which other algorithms are in the table: they equal rliable's for that algorithm
(or pair) alone after `np.random.seed(seed)`. Within it the generator is consumed in
rliable's order: repetition after repetition, and for probability of improvement the X draw
then the Y draw of each repetition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rem.results.stats import aggregates as M
from rem.results.stats.types import Scores

CHUNK = 4096  # repetitions per vectorised block: bounds memory, keeps the RNG stream intact


@dataclass(frozen=True)
class Interval:
    """Point estimates and 95% percentile CIs: estimate (K,), low (K,), high (K,)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray


def percentile_ci(samples: np.ndarray, size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """samples (reps, K) -> low (K,), high (K,); the percentiles exactly as arch computes them."""
    alpha = (1.0 - size) / 2
    low, high = np.percentile(samples, [100 * alpha, 100 * (1.0 - alpha)], axis=0)
    return low, high


def draw_indices(rs: np.random.RandomState, highs: np.ndarray, reps: int) -> np.ndarray:
    """(reps, N) indices, element j in [0, highs[j]); a scalar bound when all are equal."""
    bound = int(highs[0]) if np.all(highs == highs[0]) else highs
    return rs.randint(0, bound, size=(reps, highs.size), dtype=np.int32)  # same stream as int64


def _check(scores) -> None:
    """The traps rliable does not catch: raw scores where normalised ones belong."""
    from rem.results.stats.checks import check_normalised

    for s in scores:
        check_normalised(s)


def resample(lay: M.Layout, idx: np.ndarray) -> np.ndarray:
    """idx (reps, N) run indices -> (reps, N) scores: element (r, g) takes run idx of game g."""
    return lay.pool[lay.offsets[lay.game] + idx]


def aggregate_intervals(
    scores: dict[str, Scores], reps: int, seed: int, size: float = 0.95
) -> dict[str, Interval]:
    """Mean, median, IQM, optimality gap, #superhuman with stratified-bootstrap CIs.

    scores: human-normalised (a set that looks raw is refused, rem.results.stats.checks).
    """
    _check(scores.values())
    out = {}
    for name, s in scores.items():
        rs = np.random.RandomState(seed)
        lay = M.layout(s)
        samples = np.empty((reps, len(M.METRICS)))
        for start in range(0, reps, CHUNK):
            n = min(CHUNK, reps - start)
            samples[start : start + n] = M.batch_aggregates(
                resample(lay, draw_indices(rs, lay.highs, n)), lay
            )
        low, high = percentile_ci(samples, size)
        out[name] = Interval(M.point_aggregates(s), low, high)
    return out


def profile_intervals(
    scores: dict[str, Scores], taus: np.ndarray, reps: int, seed: int, size: float = 0.95
) -> dict[str, Interval]:
    """Performance profiles (fraction of runs with score > tau) with CIs at every tau."""
    _check(scores.values())
    chunk = max(1, CHUNK // 8)  # (chunk, N, T) booleans per block
    out = {}
    for name, s in scores.items():
        rs = np.random.RandomState(seed)
        lay = M.layout(s)
        samples = np.empty((reps, len(taus)))
        for start in range(0, reps, chunk):
            n = min(chunk, reps - start)
            samples[start : start + n] = M.batch_profiles(
                resample(lay, draw_indices(rs, lay.highs, n)), lay, taus
            )
        low, high = percentile_ci(samples, size)
        out[name] = Interval(M.point_profile(s, taus), low, high)
    return out


def improvement_intervals(
    pairs: dict[str, tuple[Scores, Scores]], reps: int, seed: int, size: float = 0.95
) -> dict[str, Interval]:
    """P(X > Y) with CIs from independent stratified resampling of X and Y (rliable)."""
    _check(s for pair in pairs.values() for s in pair)
    out = {}
    for name, (x, y) in pairs.items():
        rs = np.random.RandomState(seed)
        lx, ly = M.layout(x), M.layout(y)
        highs = np.concatenate([lx.highs, ly.highs])  # per repetition: X's draw, then Y's
        samples = np.empty((reps, 1))
        for start in range(0, reps, CHUNK):
            n = min(CHUNK, reps - start)
            idx = draw_indices(rs, highs, n)
            xs = resample(lx, idx[:, : lx.highs.size])
            ys = resample(ly, idx[:, lx.highs.size :])
            samples[start : start + n, 0] = M.batch_improvement(xs, lx, ys, ly)
        low, high = percentile_ci(samples, size)
        out[name] = Interval(np.array([M.point_improvement(x, y)]), low, high)
    return out
