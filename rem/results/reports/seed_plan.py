"""Seed planner: how many runs per game an Atari 100k comparison needs.

From the published per-run scores of one algorithm (REM by default) we bootstrap over runs
within games: an experiment with n runs per game draws, for every game, n runs with
replacement from that game's published runs. Over many such experiments:

- IQM spread: the 95% range of the experiment's IQM (human-normalised), i.e. how far one
  experiment's IQM lands from another's;
- expected CI width: the width of the 95% stratified-bootstrap CI that rliable reports on
  one experiment. A bootstrap over n runs sees each game's plug-in variance, (n - 1) / n
  of the population's, so its interval is narrower than the spread by sqrt((n - 1) / n)
  (18% at 3 runs, 5% at 10): expected width = sqrt((n - 1) / n) x spread;
- power: the chance that the 95% CI of IQM(B) - IQM(A) excludes 0 when variant B's true
  IQM exceeds A's by delta (B = A's runs shifted by delta, an IQM shift of exactly delta).

`simulate` checks these numbers the slow, direct way: it draws whole experiments, runs the
stratified bootstrap (rem.results.stats.bootstrap, rliable's resamples) on each and averages the
interval widths and detections (tests/test_results_seeds.py: widths agree within 10%).
`cached_check` stores its result under a key of everything it reads (the runs, the rows'
run counts and deltas, the settings, its code and numpy's version), so `snakemake paper`
reuses it instead of simulating again (rules in workflow/rules/paper.smk).

Shapes: a game pool is (n_g,) published runs; an experiment batch is (reps, n * games).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rem.results.stats import aggregates as M
from rem.results.stats import bootstrap as B
from rem.results.stats.types import Scores

DEFAULT_RUNS = (3, 5, 10, 20)
DEFAULT_DELTAS = (0.05, 0.1, 0.2)
CHUNK = 2048  # experiments per vectorised block: (CHUNK, n * games) floats


def shrink(n: int) -> float:
    """Expected bootstrap-CI width / true spread at n runs per game (plug-in variance)."""
    return math.sqrt((n - 1) / n)


def sample_iqm(pools: list[np.ndarray], n: int, reps: int, rs: np.random.RandomState) -> np.ndarray:
    """(reps,) IQM of experiments drawing n runs per game from each pool (with replacement)."""
    out = np.empty(reps)
    for start in range(0, reps, CHUNK):
        k = min(CHUNK, reps - start)
        x = np.concatenate([p[rs.randint(0, len(p), size=(k, n))] for p in pools], axis=1)
        out[start : start + k] = M.batch_iqm(x)
    return out


@dataclass(frozen=True)
class PlanRow:
    games: str  # label of the game set
    num_games: int
    runs: int
    iqm: float  # the published runs' IQM (point estimate, rliable)
    spread: float  # 95% range of IQM across experiments
    ci_width: float  # expected 95% CI width reported on one experiment
    power: dict[float, float] = field(default_factory=dict)  # delta -> P(detect)
    false_positive: float = 0.0  # P(detect) when there is no difference (nominal 0.05)


def plan_seeds(
    hns: Scores,
    game_sets: dict[str, tuple[str, ...]],
    runs: tuple[int, ...] = DEFAULT_RUNS,
    deltas: tuple[float, ...] = DEFAULT_DELTAS,
    reps: int = 20_000,
    seed: int = 0,
) -> list[PlanRow]:
    """The planner's table: one row per (game set, runs per game)."""
    rows = []
    for label, games in game_sets.items():
        sub = hns.subset(games)
        pools = [sub.runs[g] for g in games]
        iqm = float(M.point_aggregates(sub)[M.METRICS.index("iqm")])
        for n in runs:
            if n < 2:
                raise ValueError(f"runs per game must be >= 2 for a bootstrap CI, got {n}")
            rs = np.random.RandomState(seed)
            a = sample_iqm(pools, n, reps, rs)
            b = sample_iqm(pools, n, reps, rs)
            lo, hi = np.percentile(a, [2.5, 97.5])
            spread = float(hi - lo)
            d0 = b - a  # null: both variants drawn from the same runs
            dlo, dhi = np.percentile(d0, [2.5, 97.5])
            half = shrink(n) * float(dhi - dlo) / 2  # the CI half-width a user would see
            power = {float(d): float(np.mean(np.abs(d0 + d) > half)) for d in deltas}
            fp = float(np.mean(np.abs(d0) > half))
            rows.append(PlanRow(label, len(games), n, iqm, spread, shrink(n) * spread, power, fp))
    return rows


@dataclass(frozen=True)
class CheckRow:
    games: str
    runs: int
    experiments: int
    planned_width: float
    simulated_width: float
    planned_power: dict[float, float]
    simulated_power: dict[float, float]
    planned_false_positive: float
    simulated_false_positive: float

    @property
    def width_ratio(self) -> float:
        return self.simulated_width / self.planned_width


def difference_interval(
    x: Scores, y: Scores, reps: int, seed: int, size: float = 0.95
) -> tuple[float, float]:
    """95% stratified-bootstrap CI of IQM(y) - IQM(x), x and y resampled independently
    (rliable's scheme for a pair; the draws of rem.results.stats.bootstrap)."""
    rs = np.random.RandomState(seed)
    lx, ly = M.layout(x), M.layout(y)
    highs = np.concatenate([lx.highs, ly.highs])
    diffs = np.empty(reps)
    for start in range(0, reps, B.CHUNK):
        k = min(B.CHUNK, reps - start)
        idx = B.draw_indices(rs, highs, k)
        xs = B.resample(lx, idx[:, : lx.highs.size])
        ys = B.resample(ly, idx[:, lx.highs.size :])
        diffs[start : start + k] = M.batch_iqm(ys) - M.batch_iqm(xs)
    lo, hi = B.percentile_ci(diffs[:, None], size)
    return float(lo[0]), float(hi[0])


def simulate(
    hns: Scores,
    games: tuple[str, ...],
    n: int,
    deltas: tuple[float, ...] = DEFAULT_DELTAS,
    experiments: int = 200,
    reps: int = 1000,
    seed: int = 0,
) -> tuple[float, dict[float, float], float]:
    """Direct simulation: mean 95% CI width of IQM over `experiments` synthetic experiments
    (n runs per game drawn from the published runs, CI by the stratified bootstrap at
    `reps`), and the fraction of experiment pairs whose difference CI, shifted by delta,
    excludes 0."""
    sub = hns.subset(games)
    rs = np.random.RandomState(seed + 1)  # experiments; the bootstraps use their own seeds
    widths, lows, highs = [], [], []
    iqm_k = M.METRICS.index("iqm")
    for e in range(experiments):
        a = Scores("A", games, {g: sub.runs[g][rs.randint(0, len(sub.runs[g]), n)] for g in games})
        b = Scores("B", games, {g: sub.runs[g][rs.randint(0, len(sub.runs[g]), n)] for g in games})
        iv = B.aggregate_intervals({"A": a}, reps, seed + e)["A"]
        widths.append(iv.high[iqm_k] - iv.low[iqm_k])
        lo, hi = difference_interval(a, b, reps, seed + e)
        lows.append(lo)
        highs.append(hi)
    lows_a, highs_a = np.array(lows), np.array(highs)
    # B + delta: every resample of B shifts by delta, so the interval does too.
    power = {float(d): float(np.mean((lows_a + d > 0) | (highs_a + d < 0))) for d in deltas}
    return (
        float(np.mean(widths)),
        power,
        power.get(0.0, float(np.mean((lows_a > 0) | (highs_a < 0)))),
    )


def check(
    hns: Scores,
    game_sets: dict[str, tuple[str, ...]],
    rows: list[PlanRow],
    experiments: int = 200,
    reps: int = 1000,
    seed: int = 0,
) -> list[CheckRow]:
    out = []
    for row in rows:
        deltas = tuple(row.power)
        width, power, fp = simulate(
            hns, game_sets[row.games], row.runs, deltas, experiments, reps, seed
        )
        out.append(
            CheckRow(
                row.games,
                row.runs,
                experiments,
                row.ci_width,
                width,
                row.power,
                power,
                row.false_positive,
                fp,
            )  # fmt: skip
        )
    return out


# ------------------------------------------------------------------ cache of the check


class CheckCacheError(ValueError):
    """A stored check that cannot be read; the message names the file and the fix."""


def check_key(
    hns: Scores,
    game_sets: dict[str, tuple[str, ...]],
    rows: list[PlanRow],
    experiments: int,
    reps: int,
    seed: int,
) -> str:
    """SHA-256 of everything `check` reads: the runs of every game set, each row's game set,
    run count and deltas, the settings, the simulation's code and numpy's version."""
    code = [inspect.getsource(f) for f in (simulate, difference_interval)]
    code += [Path(m.__file__).read_text() for m in (M, B)]
    doc = {
        "runs": {k: {g: hns.runs[g].tolist() for g in games} for k, games in game_sets.items()},
        "rows": [[r.games, r.runs, list(r.power)] for r in rows],
        "settings": [experiments, reps, seed],
        "code": code,
        "numpy": np.__version__,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _stored_rows(checks: list[CheckRow]) -> list[dict]:
    return [
        {
            "games": c.games,
            "runs": c.runs,
            "simulated_width": c.simulated_width,
            "simulated_power": [[d, p] for d, p in c.simulated_power.items()],
            "simulated_false_positive": c.simulated_false_positive,
        }
        for c in checks
    ]


def _from_stored(path: Path, rows: list[PlanRow], experiments: int) -> list[CheckRow]:
    """The rows of a stored check, joined with the planned numbers of `rows`."""
    try:
        stored = json.loads(path.read_text())["rows"]
        if [(s["games"], s["runs"]) for s in stored] != [(r.games, r.runs) for r in rows]:
            raise ValueError("its rows are not the planner's game sets and run counts")
        return [
            CheckRow(
                r.games,
                r.runs,
                experiments,
                planned_width=r.ci_width,
                simulated_width=float(s["simulated_width"]),
                planned_power=r.power,
                simulated_power={float(d): float(p) for d, p in s["simulated_power"]},
                planned_false_positive=r.false_positive,
                simulated_false_positive=float(s["simulated_false_positive"]),
            )
            for r, s in zip(rows, stored)
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckCacheError(
            f"stored seed check {path} is unreadable ({e}); delete it to simulate again"
        ) from e


def cached_check(
    hns: Scores,
    game_sets: dict[str, tuple[str, ...]],
    rows: list[PlanRow],
    cache_dir: Path,
    *,
    experiments: int = 200,
    reps: int = 1000,
    seed: int = 0,
) -> tuple[list[CheckRow], Path, bool]:
    """`check`, read from cache_dir/<key>.json when the same inputs were simulated before,
    else simulated and stored there. Returns the rows, the file and whether it was reused."""
    from rem.utils.atomic import atomic_write_text

    path = Path(cache_dir) / f"{check_key(hns, game_sets, rows, experiments, reps, seed)}.json"
    if path.is_file():
        return _from_stored(path, rows, experiments), path, True
    checks = check(hns, game_sets, rows, experiments, reps, seed)
    doc = {"experiments": experiments, "reps": reps, "seed": seed, "rows": _stored_rows(checks)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return checks, path, False


# ------------------------------------------------------------------ outputs


def _fmt_delta(d: float) -> str:
    return f"{d:g}"


def rows_csv(rows: list[PlanRow]) -> list[list[object]]:
    deltas = list(rows[0].power) if rows else []
    header = ["games", "num_games", "runs_per_game", "published_iqm", "iqm_spread_95",
              "expected_ci_width_95"] + [f"power_delta_{_fmt_delta(d)}" for d in deltas]  # fmt: skip
    header.append("false_positive_rate")
    out: list[list[object]] = [header]
    for r in rows:
        out.append([r.games, r.num_games, r.runs, r.iqm, r.spread, r.ci_width]
                   + [r.power[d] for d in deltas] + [r.false_positive])  # fmt: skip
    return out


def check_csv(checks: list[CheckRow]) -> list[list[object]]:
    deltas = list(checks[0].planned_power) if checks else []
    header = ["games", "runs_per_game", "experiments", "planned_ci_width", "simulated_ci_width",
              "width_ratio"]  # fmt: skip
    header += [f"{k}_power_delta_{_fmt_delta(d)}" for d in deltas for k in ("planned", "simulated")]
    header += ["planned_false_positive_rate", "simulated_false_positive_rate"]
    out: list[list[object]] = [header]
    for c in checks:
        row: list[object] = [c.games, c.runs, c.experiments, c.planned_width, c.simulated_width,
                             c.width_ratio]  # fmt: skip
        for d in deltas:
            row += [c.planned_power[d], c.simulated_power[d]]
        row += [c.planned_false_positive, c.simulated_false_positive]
        out.append(row)
    return out


def markdown(
    rows: list[PlanRow], algorithm: str, reps: int, seed: int, checks: list[CheckRow] | None
) -> str:
    deltas = list(rows[0].power) if rows else []
    lines = [
        f"Seed planner from the published {algorithm} runs (human-normalised IQM; "
        f"{reps} bootstrap experiments per row, seed {seed}): the 95% CI width rliable "
        "will report with n runs per game, and the power to detect a true IQM difference "
        "delta between two variants (95% CI of the difference excludes 0).",
        "",
        "| games | runs per game | expected 95% CI width of IQM | "
        + " | ".join(f"power, delta = {_fmt_delta(d)}" for d in deltas)
        + " | false positives (delta = 0) |",
        "|---|---:|---:|" + "---:|" * (len(deltas) + 1),
    ]
    for r in rows:
        lines.append(
            f"| {r.games} | {r.runs} | {r.ci_width:.3f} | "
            + " | ".join(f"{r.power[d]:.2f}" for d in deltas)
            + f" | {r.false_positive:.2f} |"
        )
    lines += [
        "",
        "Power counts a difference as detected when the 95% stratified-bootstrap CI of "
        "IQM(B) - IQM(A) excludes 0; with few runs that CI is too narrow (a bootstrap over n "
        "runs sees (n - 1) / n of the variance), so the false-positive rate exceeds the "
        "nominal 0.05 and part of the power at small delta is false detections.",
    ]
    if checks:
        worst = max(checks, key=lambda c: abs(c.width_ratio - 1))
        lines += [
            "",
            f"Checked against a direct simulation ({checks[0].experiments} synthetic "
            "experiments per row, each with its own stratified bootstrap): simulated / planned "
            f"CI width from {min(c.width_ratio for c in checks):.3f} to "
            f"{max(c.width_ratio for c in checks):.3f} (worst: {worst.games}, "
            f"{worst.runs} runs); see `seed_plan_check.csv`.",
        ]
    return "\n".join(lines) + "\n"


def write(
    out: Path,
    rows: list[PlanRow],
    algorithm: str,
    reps: int,
    seed: int,
    checks: list[CheckRow] | None,
) -> list[Path]:
    from rem.results.render import figures, tables
    from rem.utils.atomic import atomic_write_text

    def csv_text(table: list[list[object]]) -> str:
        return tables.csv_text(
            [[tables.num_text(x) if isinstance(x, float) else x for x in r] for r in table]
        )

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "seed_plan.csv", out / "seed_plan.md"]
    atomic_write_text(out / "seed_plan.csv", csv_text(rows_csv(rows)))
    atomic_write_text(out / "seed_plan.md", markdown(rows, algorithm, reps, seed, checks))
    if checks is not None:
        atomic_write_text(out / "seed_plan_check.csv", csv_text(check_csv(checks)))
        written.append(out / "seed_plan_check.csv")
    written += figures.save(figures.seed_plan_figure(rows, checks, algorithm), out, "seed_plan")
    return written
