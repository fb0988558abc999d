"""Where a sweep stands: one record per (variant, game, seed) read from its run folder.

Only reads. A run folder (rem.training.run_dir) holds manifest.json, metrics.jsonl (one
line per epoch, `time/epoch`, `time/elapsed`, `test/return_mean`...), checkpoints/, `.lock`
(flock-held by the `rem train` process, whose pid and host it names), failures.json
(health alarms, rem.training.health) and finally COMPLETED. The workflow writes each run's
log to LOGS_DIR/train/<variant>/<game>/<seed>.log (rem.ops.logs).

States:
    pending    no run folder yet (or an empty one): the run never started
    running    a `rem train` process holds the folder's lock (seen in /proc/locks on this
               host; on another host: the folder changed recently)
    stalled    running, but no new epoch for much longer than its own epoch time
    failed     no process holds it and it is not complete: stopped by an error (named), a
               kill, a cancellation or a time limit
    completed  COMPLETED exists

Each run folder is probed by rem.ops.probe (reading only), a failed run's logs by
rem.ops.logs, the ETAs and the summary are rem.ops.eta's, the records rem.ops.records'.
"""

from __future__ import annotations

import time
from pathlib import Path

from rem.ops.eta import summarise
from rem.ops.probe import Context, probe_run
from rem.ops.records import SweepStatus, iso
from rem.runs.layout import discover, run_path
from rem.runs.sweep import Sweep, SweepError, variant_epochs


def collect(
    runs_dir: str | Path,
    *,
    sweep: Sweep | None = None,
    logs_dir: str | Path | None = None,
    now: float | None = None,
) -> SweepStatus:
    """Read every run of the sweep (the config's runs, plus any other run folder found)."""
    t0 = time.perf_counter()
    runs_dir = Path(runs_dir)
    now = time.time() if now is None else now
    if not runs_dir.is_dir() and (sweep is None or runs_dir.exists()):
        raise SweepError(
            f"runs folder {runs_dir} does not exist (or is not a folder); pass the runs_dir "
            "of your workflow config, or --configfile CONFIG from the folder you run Snakemake in"
        )
    found, problems = discover(runs_dir) if runs_dir.is_dir() else ([], [])
    if sweep is None and not found:
        raise SweepError(
            f"{runs_dir} holds no REM run folders (expected {runs_dir}/<variant>/<game>/<seed>/ "
            "written by `rem train`); is it the runs_dir of this workflow?"
        )
    ctx = Context(now, Path(logs_dir) if logs_dir is not None else None)
    planned = list(sweep.runs) if sweep is not None else []
    planned_set = set(planned)
    folders = dict(found)
    keys = planned + sorted(k for k in folders if k not in planned_set)
    runs = []
    for key in keys:
        hint = variant_epochs(sweep, key.variant) if key in planned_set else None
        st = probe_run(key, folders.get(key, run_path(runs_dir, key)), ctx, hint)
        st.in_config = sweep is None or key in planned_set
        foreign = any("not a `rem train` manifest" in note for note in st.notes)
        if foreign and key not in planned_set:  # a folder of another project: not a run
            problems.append(f"{st.path}: {'; '.join(st.notes)} (another project's folder?)")
            continue
        runs.append(st)
    if sweep is None and not any(r.state != "pending" for r in runs):
        raise SweepError(
            f"{runs_dir} holds no REM run folders (expected {runs_dir}/<variant>/<game>/<seed>/ "
            "written by `rem train`"
            + (f"; found {len(problems)} folder(s) of something else" if problems else "")
            + "); is it the runs_dir of this workflow?"
        )
    status = SweepStatus(
        runs_dir=str(runs_dir),
        logs_dir=str(logs_dir) if logs_dir is not None else None,
        config=list(sweep.sources) if sweep else [],
        generated_at=iso(now),
        runs=runs,
        summary=summarise(runs, sweep, now),
        problems=problems,
    )
    status.seconds = time.perf_counter() - t0
    return status
