"""What `rem status` reports: one record per run, the sweep's summary, the coverage grid."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from rem.runs.layout import RunKey

STATES = ("pending", "running", "stalled", "failed", "completed")


@dataclass
class RunStatus:
    """Where one run stands for `rem status`: its state, progress, timing and ETA, probed from
    its run folder, lock and logs (rem.ops.probe). Progress, not results: a finished run's
    metrics are the learning report's `RunRecord`, its final score a reproduction `Run`."""

    variant: str
    game: str
    seed: int
    state: str
    path: str
    epoch: int | None = None  # last finished epoch
    epochs: int | None = None  # run.epochs
    test_return: float | None = None  # the latest test return (final evaluation when done)
    test_return_epoch: int | None = None
    elapsed_s: float | None = None  # training time of the kept epochs (+ the running one)
    epoch_s: float | None = None  # median of the recent epoch times
    eta_s: float | None = None  # remaining epochs x epoch_s
    # the first epoch in which every component trains: earlier epochs are cheaper, so their
    # times underestimate the rest of the run
    all_train_from: int | None = None
    since_progress_s: float | None = None  # seconds since the last epoch line
    host: str | None = None
    pid: int | None = None
    device: str | None = None  # the device's name (manifest device_name)
    device_type: str | None = None  # cpu, cuda
    error: str | None = None  # why it failed (or stalled)
    log: str | None = None
    slurm_job: str | None = None
    failures: int = 0  # health stops recorded in failures.json (all attempts)
    notes: list[str] = field(default_factory=list)
    in_config: bool = True
    disk_bytes: int | None = None  # what the run folder holds (rem.training.disk)

    @property
    def key(self) -> RunKey:
        return RunKey(self.variant, self.game, self.seed)


@dataclass
class Summary:
    counts: dict[str, int]
    total: int
    run_hours_spent: float
    run_hours_remaining: float | None  # None: nothing to estimate it from
    unestimated: int  # unfinished runs without any estimate
    gpu_share_per_run: float | None  # GPUs one run occupies (None: unknown)
    gpu_hours_spent: float | None
    gpu_hours_remaining: float | None
    parallelism: int  # runs running now
    finish_eta_s: float | None  # on the current parallelism
    finish_at: str | None
    estimate_basis: str
    disk_bytes: int = 0  # all run folders read
    disk_free_bytes: int | None = None  # on the runs folder's file system


@dataclass
class SweepStatus:
    runs_dir: str
    logs_dir: str | None
    config: list[str]  # config files (empty: a bare runs folder)
    generated_at: str
    runs: list[RunStatus]
    summary: Summary
    problems: list[str]  # folders that are not REM runs, etc.
    seconds: float = 0.0  # time taken to read everything

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["coverage"] = coverage(self)
        return out


def coverage(status: SweepStatus) -> dict[str, dict[str, Any]]:
    """variant -> {games, seeds, states: {game: {seed: state}}} (the grid of the report)."""
    grid: dict[str, dict[str, Any]] = {}
    for r in status.runs:
        g = grid.setdefault(r.variant, {"games": [], "seeds": [], "states": {}})
        if r.game not in g["games"]:
            g["games"].append(r.game)
        if r.seed not in g["seeds"]:
            g["seeds"].append(r.seed)
        g["states"].setdefault(r.game, {})[str(r.seed)] = r.state
    for g in grid.values():
        g["seeds"].sort()
    return grid


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h}h{m:02d}m"
    return f"{seconds / 86400:.1f}d"


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")
