"""Timings of the results stage: our vectorised bootstrap against rliable's loops.

    OMP_NUM_THREADS=1 python benchmarks/bench_results.py                 # the paper's reps
    python benchmarks/bench_results.py --rliable-scale 0.1               # rliable at 10% reps

For the main comparison (6 algorithms x 26 games x 5 runs) and the ablations (6 x 8 x 5) it
times aggregates (mean, median, IQM, optimality gap), performance profiles (201 taus) and
the probability of improvement of REM over each other algorithm, ours and rliable's, and
prints the largest difference between the two sets of CI endpoints (same seed, same reps:
identical resamples, so the difference is rounding). With --rliable-scale < 1 rliable runs
at that fraction of the reps, its time is extrapolated linearly (marked '~') and the CI
comparison uses our intervals at the same reduced reps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rliable import library as rly_library
from rliable import metrics as rly_metrics

from rem.results.reports.studies import ABLATIONS, MAIN, REFERENCE
from rem.results.score_files import load_references, load_scores
from rem.results.settings import ABLATION_GAMES
from rem.results.stats import bootstrap as B
from rem.results.stats.scores import normalize

ROOT = Path(__file__).resolve().parents[1]
TAUS = np.linspace(0.0, 8.0, 201)


def rliable_aggregates(m: np.ndarray) -> np.ndarray:
    return np.array(
        [
            rly_metrics.aggregate_mean(m),
            rly_metrics.aggregate_median(m),
            rly_metrics.aggregate_iqm(m),
            rly_metrics.aggregate_optimality_gap(m),
            np.sum(m.mean(axis=0) >= 1.0),
        ]
    )


def load_study(published: Path, algos, games):
    refs = load_references(published)
    return {
        a.label: normalize(
            refs,
            load_scores(
                published / a.file, name=a.label, known_games=refs.games, required_games=games
            ),
        )
        for a in algos
    }


def timed(fn):
    """(result, wall seconds, CPU seconds): CPU time is what to compare on a busy machine."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def ours_intervals(kind, scores, reps, seed):
    if kind == "aggregates":
        return B.aggregate_intervals(scores, reps, seed)
    if kind == "profiles":
        return B.profile_intervals(scores, TAUS, reps, seed)
    pairs = {f"{REFERENCE},{b}": (scores[REFERENCE], scores[b]) for b in scores if b != REFERENCE}
    return B.improvement_intervals(pairs, reps, seed)


def rliable_intervals(kind, scores, reps, seed):
    """rliable per algorithm (pair), each after np.random.seed(seed), as ours is defined."""
    lows, highs = {}, {}
    if kind == "improvement":
        items = {
            f"{REFERENCE},{b}": (scores[REFERENCE].matrix(), scores[b].matrix())
            for b in scores
            if b != REFERENCE
        }
    else:
        items = {k: s.matrix() for k, s in scores.items()}
    for key, data in items.items():
        np.random.seed(seed)
        if kind == "aggregates":
            _, ci = rly_library.get_interval_estimates({key: data}, rliable_aggregates, reps=reps)
        elif kind == "profiles":
            _, ci = rly_library.create_performance_profile({key: data}, TAUS, reps=reps)
        else:
            _, ci = rly_library.get_interval_estimates(
                {key: data}, rly_metrics.probability_of_improvement, reps=reps
            )
        lows[key], highs[key] = np.asarray(ci[key][0]), np.asarray(ci[key][1])
    return lows, highs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--published", default=str(ROOT / "results" / "published"))
    parser.add_argument("--reps-aggregates", type=int, default=50_000)
    parser.add_argument("--reps-profiles", type=int, default=2_000)
    parser.add_argument("--reps-improvement", type=int, default=1_000)
    parser.add_argument(
        "--rliable-scale",
        type=float,
        default=1.0,
        help="fraction of the reps rliable runs (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    published = Path(args.published)
    refs = load_references(published)
    studies = {
        "main": load_study(published, MAIN, refs.games),
        "ablations": load_study(published, ABLATIONS, tuple(ABLATION_GAMES)),
    }
    reps = {
        "aggregates": args.reps_aggregates,
        "profiles": args.reps_profiles,
        "improvement": args.reps_improvement,
    }
    print(f"{'study':10} {'computation':12} {'reps':>7} {'ours s':>8} {'(cpu)':>7} "
          f"{'rliable s':>10} {'(cpu)':>8} {'speed-up':>9} {'max |CI diff|':>14}")  # fmt: skip
    totals = {"ours": 0.0, "ours_cpu": 0.0, "rliable": 0.0, "rliable_cpu": 0.0}
    for study, scores in studies.items():
        for kind, n in reps.items():
            ours, t_ours, c_ours = timed(
                lambda s=scores, k=kind, n=n: ours_intervals(k, s, n, args.seed)
            )
            totals["ours"] += t_ours
            totals["ours_cpu"] += c_ours
            if args.rliable_scale <= 0:
                print(f"{study:10} {kind:12} {n:7d} {t_ours:8.2f} {c_ours:7.2f}")
                continue
            n_rly = max(1, round(n * args.rliable_scale))
            (lows, highs), t_rly, c_rly = timed(
                lambda s=scores, k=kind, n=n_rly: rliable_intervals(k, s, n, args.seed)
            )
            t_rly_full, c_rly_full = t_rly * n / n_rly, c_rly * n / n_rly
            totals["rliable"] += t_rly_full
            totals["rliable_cpu"] += c_rly_full
            same = ours if n_rly == n else ours_intervals(kind, scores, n_rly, args.seed)
            diff = max(
                max(np.max(np.abs(same[k].low - lows[k])), np.max(np.abs(same[k].high - highs[k])))
                for k in lows
            )
            mark = "" if n_rly == n else "~"
            print(f"{study:10} {kind:12} {n:7d} {t_ours:8.2f} {c_ours:7.2f} "
                  f"{mark + f'{t_rly_full:.1f}':>10} {mark + f'{c_rly_full:.1f}':>8} "
                  f"{c_rly_full / c_ours:8.0f}x {diff:14.2e}")  # fmt: skip
    line = f"total: ours {totals['ours']:.2f} s wall, {totals['ours_cpu']:.2f} s CPU"
    if args.rliable_scale > 0:
        line += f"; rliable {totals['rliable']:.1f} s wall, {totals['rliable_cpu']:.1f} s CPU"
    print(line + " (speed-up column: CPU time)")


if __name__ == "__main__":
    main()
