"""Time left: each run's ETA from its own epoch times, and the sweep's remaining run- and
GPU-hours and expected finish from its finished and timed runs."""

from __future__ import annotations

import statistics
from pathlib import Path

from rem.ops.records import STATES, RunStatus, Summary, iso
from rem.runs.sweep import Sweep
from rem.training.disk import free_bytes

LOWER_BOUND_NOTE = (
    "ETA is a lower bound until epoch {epoch}, the first in which every component trains"
)


def early(st: RunStatus) -> bool:
    """Not every component has trained yet in the run's timed epochs."""
    return st.all_train_from is not None and st.epoch is not None and st.epoch < st.all_train_from


def refine_early_etas(runs: list[RunStatus], est: dict[str, float]) -> None:
    """An early run's ETA from its variant's finished runs when they give more."""
    for r in runs:
        full = est.get(r.variant)
        if r.state == "completed" or not early(r) or full is None or not r.epochs:
            continue
        from_finished = full * (1 - (r.epoch or 0) / r.epochs)
        if r.eta_s is None or from_finished > r.eta_s:
            r.eta_s = from_finished
            r.notes = [n for n in r.notes if n != LOWER_BOUND_NOTE.format(epoch=r.all_train_from)]
            r.notes.append("ETA from the finished runs of this variant")


def run_seconds_estimate(runs: list[RunStatus]) -> tuple[dict[str, float], float | None, str]:
    """Per variant, the expected training seconds of a whole run, and a fallback."""
    by_variant: dict[str, list[float]] = {}
    epoch_by_variant: dict[str, list[tuple[float, int]]] = {}
    for r in runs:
        if r.state == "completed" and r.elapsed_s:
            by_variant.setdefault(r.variant, []).append(r.elapsed_s)
        elif r.epoch_s and r.epochs and not early(r):
            epoch_by_variant.setdefault(r.variant, []).append((r.epoch_s, r.epochs))
    est = {v: statistics.median(xs) for v, xs in by_variant.items()}
    for v, xs in epoch_by_variant.items():
        est.setdefault(v, statistics.median(e * n for e, n in xs))
    every = list(est.values())
    fallback = statistics.median(every) if every else None
    basis = (
        "finished runs' training times, else the runs' own recent epoch times x epochs"
        if every
        else "nothing finished or timed yet"
    )
    return est, fallback, basis


def summarise(runs: list[RunStatus], sweep: Sweep | None, now: float) -> Summary:
    counts = {s: 0 for s in STATES}
    for r in runs:
        counts[r.state] += 1
    spent = sum(r.elapsed_s or 0.0 for r in runs) / 3600
    est, fallback, basis = run_seconds_estimate(runs)
    refine_early_etas(runs, est)
    remaining, unestimated = 0.0, 0
    for r in runs:
        if r.state == "completed":
            continue
        if r.eta_s is not None:
            remaining += r.eta_s
        elif r.variant in est or fallback is not None:
            full = est.get(r.variant, fallback)
            done = (r.epoch or 0) / r.epochs if r.epochs else 0.0
            remaining += full * (1 - done)
        else:
            unestimated += 1
    has_unfinished = any(r.state != "completed" for r in runs)
    remaining_h = (
        remaining / 3600 if (remaining or not has_unfinished or unestimated == 0) else None
    )
    if sweep is not None:
        share: float | None = sweep.gpu_share_per_run
    else:
        devices = {r.device_type == "cuda" for r in runs if r.device_type}
        share = 1.0 if devices == {True} else (0.0 if devices == {False} else None)
    running = counts["running"] + counts["stalled"]
    finish = None
    if remaining_h is not None and has_unfinished and counts["running"] > 0:
        longest = max((r.eta_s or 0.0) for r in runs if r.state == "running")
        finish = max(remaining_h * 3600 / counts["running"], longest)
    return Summary(
        counts=counts,
        total=len(runs),
        run_hours_spent=spent,
        run_hours_remaining=remaining_h,
        unestimated=unestimated,
        gpu_share_per_run=share,
        gpu_hours_spent=spent * share if share is not None else None,
        gpu_hours_remaining=remaining_h * share
        if share is not None and remaining_h is not None
        else None,
        parallelism=running,
        finish_eta_s=finish,
        finish_at=iso(now + finish) if finish is not None else None,
        estimate_basis=basis,
        disk_bytes=sum(r.disk_bytes or 0 for r in runs),
        disk_free_bytes=free_bytes(Path(runs[0].path).parents[2]) if runs else None,
    )
