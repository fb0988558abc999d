"""Where a sweep stands: one record per (variant, game, seed) read from its run folder.

Only reads. A run folder (rem.training.run_dir) holds manifest.json, metrics.jsonl (one
line per epoch, `time/epoch`, `time/elapsed`, `test/return_mean`...), checkpoints/, `.lock`
(flock-held by the `rem train` process, whose pid and host it names), failures.json
(health alarms, rem.training.health) and finally COMPLETED. The workflow writes each run's
log to LOGS_DIR/train/<variant>/<game>/<seed>.log (this attempt) and .attempts.log (all
attempts, each starting with `== job start on HOST at TIME (SLURM job ID)`).

States:
    pending    no run folder yet (or an empty one): the run never started
    running    a `rem train` process holds the folder's lock (seen in /proc/locks on this
               host; on another host: the folder changed recently)
    stalled    running, but no new epoch for much longer than its own epoch time
    failed     no process holds it and it is not complete: stopped by an error (named), a
               kill, a cancellation or a time limit
    completed  COMPLETED exists

Speed: a folder costs a few stats, the manifest and the last few tens of KB of
metrics.jsonl (never the whole file); logs are read (their tails) only for failed runs.
A half-written last line (a trainer writing at that moment) is ignored, never an error; an
earlier line that is not JSON makes the run's progress unknown, with a note naming it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rem.ops.sweep import Sweep, SweepError, variant_epochs
from rem.results.runs import RunKey
from rem.training.disk import free_bytes, measure_run
from rem.utils.jsonl import JsonlError, parse_line, read_jsonl

STATES = ("pending", "running", "stalled", "failed", "completed")
TAIL_BYTES = 64 * 1024  # enough for the last ~20 epoch lines of a paper run
RECENT_EPOCHS = 10  # epoch times the ETA and the stall test use
STALL_FACTOR = 5.0  # stalled: no new epoch for this many times its slowest recent epoch...
STALL_MIN_S = 120.0  # ...and at least this long
STALL_UNKNOWN_S = 3600.0  # no epoch finished yet: stalled after this long
SLURM_LOG_DIR = "logs/slurm"  # profiles/slurm: slurm-logdir (relative to the workflow's folder)
JOB_RE = re.compile(r"== job start on (\S+) at (\S+) \(SLURM job ([^)]+)\)")
ERROR_RE = re.compile(
    r"error|exception|traceback|killed|cancelled|time limit|out of memory|oom|non-finite",
    re.IGNORECASE,
)


@dataclass
class RunStatus:
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


# ----------------------------------------------------------------------------- reading


def _locks_held() -> set[tuple[int, int]] | None:
    """(device, inode) of every flock on this host from /proc/locks; None if unreadable."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    held = set()
    for line in text.splitlines():
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        if len(parts) >= 6 and parts[1] == "FLOCK":
            try:
                major, minor, inode = parts[5].split(":")
                held.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
            except ValueError:
                continue
    return held


def _read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> tuple[list[dict], bool]:
    """(records of the file's tail in file order, more lines before them).

    Parsed from the end and only as far as `rem status` needs (the last RECENT_EPOCHS epoch
    lines and the latest test return): JSON parsing is most of the cost of a folder. The
    rule is rem.utils.jsonl's: a bad last line is being written, skipped; an earlier one
    raises JsonlError, which the whole file's reader raises with the line's number.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read()
    except OSError:
        return [], False
    lines = data.splitlines()
    if start > 0 and lines:
        lines.pop(0)  # cut in the middle
    records, epochs, tested = [], 0, False
    for i in range(len(lines) - 1, -1, -1):
        record = parse_line(lines[i])
        if record is None:
            if i == len(lines) - 1:
                continue  # the last line, being written
            return read_jsonl(path), False  # raises, naming the line's number
        records.append(record)
        if not record.get("final") and not record.get("failed"):
            epochs += 1
            tested = tested or record.get("test/return_mean") is not None
        if epochs >= RECENT_EPOCHS and (tested or epochs >= 3 * RECENT_EPOCHS):
            return records[::-1], start > 0 or i > 0
    return records[::-1], start > 0


def _log_tail(path: Path, max_bytes: int = 16 * 1024) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()]


ERROR_WORDS = (
    "error",
    "exception",
    "traceback",
    "killed",
    "cancelled",
    "time limit",
    "out of memory",
    "oom",
    "non-finite",
)


def _last_error_line(lines: list[str]) -> str | None:
    text = "\n".join(lines).lower()
    if not any(word in text for word in ERROR_WORDS):  # the usual case: one pass, no regex
        return None
    for line in reversed(lines):
        if ERROR_RE.search(line) and not line.startswith("=="):
            return line.strip()[:300]
    return None


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _lock_holder(path: Path) -> tuple[int | None, str | None]:
    """(pid, host) that `.lock` names (the last `rem train` that held it)."""
    try:
        text = path.read_text(errors="replace")[:500]
    except OSError:
        return None, None
    match = re.match(r"pid (\d+) on host (\S+?)[,:]?\s", text)
    return (int(match.group(1)), match.group(2)) if match else (None, None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Context:
    """What every run's reading shares: the time, this host, the locks on it."""

    def __init__(self, now: float, logs_dir: Path | None) -> None:
        self.now = now
        self.host = socket.gethostname()
        self.locks = _locks_held()
        self.logs_dir = logs_dir


def read_run(key: RunKey, path: Path, ctx: _Context, epochs_hint: int | None) -> RunStatus:
    """The status of one run folder (which may not exist: pending)."""
    st = RunStatus(
        key.variant, key.game, key.seed, state="pending", path=str(path), epochs=epochs_hint
    )
    try:
        names = set(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return st
    if not names:
        return st
    st.disk_bytes = measure_run(path).total
    manifest = _read_manifest(path, names, st)
    if manifest:
        _apply_manifest(st, manifest, key)
    times, failed_line = _read_progress(path, names, st)
    st.since_progress_s = _since_progress(path, names, manifest, ctx)
    st.failures = _count_failures(path) if "failures.json" in names else 0
    if ctx.logs_dir is not None:
        st.slurm_job = _slurm_job(ctx, key)
    if "COMPLETED" in names:
        st.state = "completed"
        st.epoch = st.epochs if st.epochs is not None else st.epoch
        st.eta_s = 0.0
        return st
    holder_pid, holder_host = _lock_holder(path / ".lock") if ".lock" in names else (None, None)
    st.pid, st.host = holder_pid or st.pid, holder_host or st.host
    if _is_running(path, st, ctx, names):
        _running_state(st, times, ctx)
    else:
        st.state = "failed"
        if "manifest.json" not in names:
            st.notes.append("run files but no manifest.json: not (yet) written by `rem train`")
    if st.epochs is not None and st.epoch is not None and st.epoch_s is not None:
        st.eta_s = max(0, st.epochs - st.epoch) * st.epoch_s
        if _early(st):
            st.notes.append(LOWER_BOUND_NOTE.format(epoch=st.all_train_from))
    if st.state == "failed":
        _explain_failure(st, key, manifest, failed_line, ctx)
    return st


def _read_manifest(path: Path, names: set[str], st: RunStatus) -> dict[str, Any] | None:
    """The run's manifest.json if it is one of `rem train` (else None, with a note)."""
    manifest: dict[str, Any] | None = None
    if "manifest.json" in names:
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            st.notes.append("manifest.json unreadable (not JSON)")
        if manifest is not None and not (
            isinstance(manifest, dict) and {"game", "variant", "seed"} <= set(manifest)
        ):
            st.notes.append("manifest.json is not a `rem train` manifest (no game/variant/seed)")
            manifest = None
    return manifest


def _apply_manifest(st: RunStatus, manifest: dict[str, Any], key: RunKey) -> None:
    """Identity and static facts: epochs, device, the last session's host and pid."""
    config = manifest.get("config") or {}
    epochs = (config.get("run") or {}).get("epochs")
    st.epochs = epochs if isinstance(epochs, int) else st.epochs
    starts = [c.get("start_after_epochs") for c in (config.get("training") or {}).values()]
    if starts and all(isinstance(x, int) for x in starts):
        st.all_train_from = max(starts) + 1
    st.device = manifest.get("device_name") or manifest.get("device")
    st.device_type = str(manifest.get("device") or "").split(":")[0] or None
    sessions = manifest.get("sessions") or []
    if sessions:
        st.host, st.pid = sessions[-1].get("host"), sessions[-1].get("pid")
    if (manifest.get("variant"), manifest.get("game"), manifest.get("seed")) != (
        key.variant,
        key.game,
        key.seed,
    ):
        st.notes.append(
            f"manifest says {manifest.get('variant')}/{manifest.get('game')}/"
            f"{manifest.get('seed')}, not the folder's run"
        )


def _read_progress(path: Path, names: set[str], st: RunStatus) -> tuple[list[float], dict | None]:
    """Progress from the tail of metrics.jsonl: epoch, epoch time, training time, latest test
    return (the final evaluation's when done). Returns the recent epoch times and the last
    line of a failed epoch (None: none). A corrupted line is a note; progress stays unknown."""
    try:
        return _progress(path, names, st)
    except JsonlError as err:
        st.notes.append(str(err))
        return [], None


def _progress(path: Path, names: set[str], st: RunStatus) -> tuple[list[float], dict | None]:
    records, more = _read_tail(path / "metrics.jsonl") if "metrics.jsonl" in names else ([], False)
    epoch_lines = [r for r in records if isinstance(r.get("epoch"), int) and not r.get("final")]
    progress = [r for r in epoch_lines if not r.get("failed")]
    times: list[float] = []
    failed_line = next((r for r in reversed(epoch_lines) if r.get("failed")), None)
    final = next((r for r in reversed(records) if r.get("final")), None)
    if progress:
        st.epoch = progress[-1]["epoch"]
        times = [
            r["time/epoch"]
            for r in progress[-RECENT_EPOCHS:]
            if isinstance(r.get("time/epoch"), (int, float))
        ]
        if times:
            st.epoch_s = statistics.median(times)
        st.elapsed_s = _elapsed(path, progress, more)
        tested = next(
            (r for r in reversed(progress) if r.get("test/return_mean") is not None), None
        )
        if tested:
            st.test_return, st.test_return_epoch = (
                float(tested["test/return_mean"]),
                tested["epoch"],
            )
    if final is not None:
        _apply_final(st, final)
    return times, failed_line


def _elapsed(path: Path, progress: list[dict], more: bool) -> float:
    """Training seconds of the kept epochs: the last `time/elapsed`, else the epoch times."""
    elapsed = next(
        (
            r["time/elapsed"]
            for r in reversed(progress)
            if isinstance(r.get("time/elapsed"), (int, float))
        ),
        None,
    )
    if elapsed is None:  # lines without `time/elapsed`: sum the whole file's epoch times
        every = read_jsonl(path / "metrics.jsonl") if more else progress
        elapsed = sum(
            r.get("time/epoch") or 0.0 for r in every if not r.get("final") and not r.get("failed")
        )
    return float(elapsed)


def _apply_final(st: RunStatus, final: dict) -> None:
    """The final evaluation's line: the run's score and the evaluation's seconds."""
    if final.get("final/mean_return") is not None:
        st.test_return, st.test_return_epoch = (
            float(final["final/mean_return"]),
            final.get("epoch"),
        )
    if isinstance(final.get("final/eval_seconds"), (int, float)):
        st.elapsed_s = (st.elapsed_s or 0.0) + float(final["final/eval_seconds"])


def _since_progress(
    path: Path, names: set[str], manifest: dict[str, Any] | None, ctx: _Context
) -> float | None:
    """Seconds since the run last wrote metrics.jsonl or its last session started."""
    try:
        last_write = os.stat(path / "metrics.jsonl").st_mtime if "metrics.jsonl" in names else None
    except OSError:
        last_write = None
    started = None
    if manifest and manifest.get("sessions"):
        started = _parse_time(manifest["sessions"][-1].get("started_at"))
    last_progress = (
        max(t for t in (last_write, started) if t is not None) if (last_write or started) else None
    )
    return None if last_progress is None else max(0.0, ctx.now - last_progress)


def _running_state(st: RunStatus, times: list[float], ctx: _Context) -> None:
    """A held run: running, or stalled when no epoch came for much longer than its epochs
    take."""
    st.state = "running"
    if st.elapsed_s is not None and st.since_progress_s is not None:
        st.elapsed_s += st.since_progress_s  # the epoch in progress
    elif st.since_progress_s is not None:
        st.elapsed_s = st.since_progress_s
    # times is empty when no epoch has finished yet
    limit = max(STALL_FACTOR * max(times), STALL_MIN_S) if times else STALL_UNKNOWN_S
    if st.since_progress_s is not None and st.since_progress_s > limit:
        st.state = "stalled"
        st.error = (
            f"no new epoch for {fmt_duration(st.since_progress_s)} (its epochs take "
            f"{fmt_duration(st.epoch_s) if st.epoch_s else 'unknown'})"
            + ("" if st.host in (None, ctx.host) else f"; on host {st.host}")
        )


def _log_path(ctx: _Context, key: RunKey) -> Path:
    return ctx.logs_dir / "train" / key.variant / key.game / f"{key.seed}.log"


def _slurm_job(ctx: _Context, key: RunKey) -> str | None:
    """The SLURM job of the run's latest attempt (its attempts log's last `== job start`)."""
    attempts = _log_path(ctx, key).with_name(f"{key.seed}.attempts.log")
    try:
        with open(attempts, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            data = f.read()
    except OSError:
        return None
    start = data.rfind(b"== job start on ")  # one search, not a regex per line
    if start < 0:
        return None
    match = JOB_RE.match(data[start:].split(b"\n", 1)[0].decode("utf-8", "replace"))
    return None if match is None or match.group(3) == "none" else match.group(3)


def _slurm_log(key: RunKey, job: str) -> Path | None:
    """The SLURM job's own log, where profiles/slurm puts it (slurm-logdir: logs/slurm):
    rule_train/<variant>_<game>_<seed>/<job>.log, or train_pack_<i>/<job>.log for a pack."""
    base = Path(SLURM_LOG_DIR)
    direct = base / "rule_train" / f"{key.variant}_{key.game}_{key.seed}" / f"{job}.log"
    if direct.exists():
        return direct
    return next(iter(sorted(base.glob(f"rule_train_pack_*/{job}.log"))), None)


def _count_failures(path: Path) -> int:
    try:
        data = json.loads((path / "failures.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(data) if isinstance(data, list) else 0


def _is_running(path: Path, st: RunStatus, ctx: _Context, names: set[str]) -> bool:
    """A `rem train` process holds the folder. Never takes the lock itself: a status reader
    holding it, even for a moment, would make a starting trainer refuse the folder."""
    if ".lock" not in names:
        return False
    local = st.host in (None, ctx.host)
    if local and ctx.locks is not None:
        try:
            info = os.stat(path / ".lock")
        except OSError:
            return False
        return (info.st_dev, info.st_ino) in ctx.locks
    if local and st.pid is not None:
        return _pid_alive(st.pid)
    # Another host (a cluster node): its lock is not visible here; a recent write says alive.
    limit = max(STALL_FACTOR * (st.epoch_s or 0.0), STALL_MIN_S) if st.epoch_s else STALL_UNKNOWN_S
    return st.since_progress_s is not None and st.since_progress_s <= 4 * limit


def _explain_failure(
    st: RunStatus, key: RunKey, manifest: dict | None, failed_line: dict | None, ctx: _Context
) -> None:
    error = None
    if ctx.logs_dir is not None:
        log = _log_path(ctx, key)
        if log.exists():
            st.log = str(log)
            error = _last_error_line(_log_tail(log))
    if error is None and st.slurm_job:  # SLURM writes time limits and OOM kills to its own log
        slurm_log = _slurm_log(key, st.slurm_job)
        if slurm_log is not None:
            st.notes.append(f"SLURM log {slurm_log}")
            error = _last_error_line(_log_tail(slurm_log))
    if failed_line is not None and failed_line.get("error"):
        st.error = str(failed_line["error"])
    elif manifest and manifest.get("status") == "failed" and manifest.get("error"):
        st.error = str(manifest["error"])
    elif error:
        st.error = error
    else:
        where = f" after epoch {st.epoch}" if st.epoch else " before its first epoch"
        st.error = (
            f"the process stopped{where} without an error in its log: killed, cancelled, out "
            "of memory or time (rerun the workflow to resume it from its last checkpoint)"
        )
    if st.host not in (None, ctx.host):
        st.notes.append(
            f"ran on host {st.host}: no change for {fmt_duration(st.since_progress_s)}, and its "
            "process is not visible from here"
        )


# ----------------------------------------------------------------------------- the sweep


def discover(runs_dir: Path) -> tuple[list[tuple[RunKey, Path]], list[str]]:
    """Run folders RUNS_DIR/<variant>/<game>/<seed>/ (with any run file), and problems."""
    found, problems = [], []
    try:
        variants = sorted(os.scandir(runs_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    for v in variants:
        if not v.is_dir() or v.name.startswith("."):
            continue
        for g in sorted(os.scandir(v.path), key=lambda e: e.name):
            if not g.is_dir() or g.name.startswith("."):
                continue
            for s in sorted(os.scandir(g.path), key=lambda e: e.name):
                if s.is_dir() and s.name.isdigit():
                    found.append((RunKey(v.name, g.name, int(s.name)), Path(s.path)))
                elif s.is_dir():
                    problems.append(
                        f"{s.path}: not a run folder (expected <variant>/<game>/<seed number>)"
                    )
    return found, problems


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
    ctx = _Context(now, Path(logs_dir) if logs_dir is not None else None)
    planned = list(sweep.runs) if sweep is not None else []
    planned_set = set(planned)
    folders = dict(found)
    keys = planned + sorted(k for k in folders if k not in planned_set)
    runs = []
    for key in keys:
        hint = variant_epochs(sweep, key.variant) if key in planned_set else None
        st = read_run(
            key, folders.get(key, runs_dir / key.variant / key.game / str(key.seed)), ctx, hint
        )
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
        generated_at=_iso(now),
        runs=runs,
        summary=summarise(runs, sweep, now),
        problems=problems,
    )
    status.seconds = time.perf_counter() - t0
    return status


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


LOWER_BOUND_NOTE = (
    "ETA is a lower bound until epoch {epoch}, the first in which every component trains"
)


def _early(st: RunStatus) -> bool:
    """Not every component has trained yet in the run's timed epochs."""
    return st.all_train_from is not None and st.epoch is not None and st.epoch < st.all_train_from


def _refine_early_etas(runs: list[RunStatus], est: dict[str, float]) -> None:
    """An early run's ETA from its variant's finished runs when they give more."""
    for r in runs:
        full = est.get(r.variant)
        if r.state == "completed" or not _early(r) or full is None or not r.epochs:
            continue
        from_finished = full * (1 - (r.epoch or 0) / r.epochs)
        if r.eta_s is None or from_finished > r.eta_s:
            r.eta_s = from_finished
            r.notes = [n for n in r.notes if n != LOWER_BOUND_NOTE.format(epoch=r.all_train_from)]
            r.notes.append("ETA from the finished runs of this variant")


def _run_seconds_estimate(runs: list[RunStatus]) -> tuple[dict[str, float], float | None, str]:
    """Per variant, the expected training seconds of a whole run, and a fallback."""
    by_variant: dict[str, list[float]] = {}
    epoch_by_variant: dict[str, list[tuple[float, int]]] = {}
    for r in runs:
        if r.state == "completed" and r.elapsed_s:
            by_variant.setdefault(r.variant, []).append(r.elapsed_s)
        elif r.epoch_s and r.epochs and not _early(r):
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
    est, fallback, basis = _run_seconds_estimate(runs)
    _refine_early_etas(runs, est)
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
        finish_at=_iso(now + finish) if finish is not None else None,
        estimate_basis=basis,
        disk_bytes=sum(r.disk_bytes or 0 for r in runs),
        disk_free_bytes=free_bytes(Path(runs[0].path).parents[2]) if runs else None,
    )


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
