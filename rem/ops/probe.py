"""One run folder probed for `rem status`: identity, progress, lock and state.

Only reads. A run folder (rem.runs.layout) holds manifest.json, metrics.jsonl (one line per
epoch, `time/epoch`, `time/elapsed`, `test/return_mean`...), checkpoints/, `.lock`
(flock-held by the `rem train` process, whose pid and host it names), failures.json (health
alarms, rem.training.health) and finally COMPLETED.

Speed: a folder costs a few stats, the manifest and the last few tens of KB of
metrics.jsonl (never the whole file). A half-written last line (a trainer writing at that
moment) is ignored, never an error; an earlier line that is not JSON makes the run's
progress unknown, with a note naming it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
from pathlib import Path
from typing import Any

from rem.ops.eta import LOWER_BOUND_NOTE, early
from rem.ops.logs import explain_failure, slurm_job
from rem.ops.records import RunStatus, fmt_duration
from rem.runs.files import ManifestError, read_manifest
from rem.runs.layout import COMPLETED, FAILURES, LOCK, MANIFEST, METRICS, RunKey
from rem.training.disk import measure_run
from rem.utils.jsonl import JsonlError, parse_line, read_jsonl

# A manifest of another program: the folder is not a run of `rem train`.
NOT_A_MANIFEST = f"{MANIFEST} is not a `rem train` manifest (no game/variant/seed)"
TAIL_BYTES = 64 * 1024  # enough for the last ~20 epoch lines of a paper run
RECENT_EPOCHS = 10  # epoch times the ETA and the stall test use
STALL_FACTOR = 5.0  # stalled: no new epoch for this many times its slowest recent epoch...
STALL_MIN_S = 120.0  # ...and at least this long
STALL_UNKNOWN_S = 3600.0  # no epoch finished yet: stalled after this long


def locks_held() -> set[tuple[int, int]] | None:
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


def read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> tuple[list[dict], bool]:
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


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lock_holder(path: Path) -> tuple[int | None, str | None]:
    """(pid, host) that `.lock` names (the last `rem train` that held it)."""
    try:
        text = path.read_text(errors="replace")[:500]
    except OSError:
        return None, None
    match = re.match(r"pid (\d+) on host (\S+?)[,:]?\s", text)
    return (int(match.group(1)), match.group(2)) if match else (None, None)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Context:
    """What every run's reading shares: the time, this host, the locks on it."""

    def __init__(self, now: float, logs_dir: Path | None) -> None:
        self.now = now
        self.host = socket.gethostname()
        self.locks = locks_held()
        self.logs_dir = logs_dir


def probe_run(key: RunKey, path: Path, ctx: Context, epochs_hint: int | None) -> RunStatus:
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
    st.failures = _count_failures(path) if FAILURES in names else 0
    if ctx.logs_dir is not None:
        st.slurm_job = slurm_job(ctx.logs_dir, key)
    if COMPLETED in names:
        st.state = "completed"
        st.epoch = st.epochs if st.epochs is not None else st.epoch
        st.eta_s = 0.0
        return st
    holder_pid, holder_host = lock_holder(path / LOCK) if LOCK in names else (None, None)
    st.pid, st.host = holder_pid or st.pid, holder_host or st.host
    if _is_running(path, st, ctx, names):
        _running_state(st, times, ctx)
    else:
        st.state = "failed"
        if MANIFEST not in names:
            st.notes.append("run files but no manifest.json: not (yet) written by `rem train`")
    if st.epochs is not None and st.epoch is not None and st.epoch_s is not None:
        st.eta_s = max(0, st.epochs - st.epoch) * st.epoch_s
        if early(st):
            st.notes.append(LOWER_BOUND_NOTE.format(epoch=st.all_train_from))
    if st.state == "failed":
        explain_failure(st, key, manifest, failed_line, logs_dir=ctx.logs_dir, host=ctx.host)
    return st


def _read_manifest(path: Path, names: set[str], st: RunStatus) -> dict[str, Any] | None:
    """The run's manifest.json if it is one of `rem train` (else None, with a note)."""
    manifest: dict[str, Any] | None = None
    if MANIFEST in names:
        try:
            manifest = read_manifest(path)
        except (OSError, ManifestError) as err:
            if not getattr(err, "parsed", False):
                st.notes.append(f"{MANIFEST} unreadable (not JSON)")
                return None
            st.notes.append(NOT_A_MANIFEST)
            return None
        if manifest is not None and not {"game", "variant", "seed"} <= set(manifest):
            st.notes.append(NOT_A_MANIFEST)
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
    records, more = read_tail(path / METRICS) if METRICS in names else ([], False)
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
        every = read_jsonl(path / METRICS) if more else progress
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
    path: Path, names: set[str], manifest: dict[str, Any] | None, ctx: Context
) -> float | None:
    """Seconds since the run last wrote metrics.jsonl or its last session started."""
    try:
        last_write = os.stat(path / METRICS).st_mtime if METRICS in names else None
    except OSError:
        last_write = None
    started = None
    if manifest and manifest.get("sessions"):
        started = parse_time(manifest["sessions"][-1].get("started_at"))
    last_progress = (
        max(t for t in (last_write, started) if t is not None) if (last_write or started) else None
    )
    return None if last_progress is None else max(0.0, ctx.now - last_progress)


def _running_state(st: RunStatus, times: list[float], ctx: Context) -> None:
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


def _count_failures(path: Path) -> int:
    try:
        data = json.loads((path / FAILURES).read_text())
    except (OSError, ValueError):
        return 0
    return len(data) if isinstance(data, list) else 0


def _is_running(path: Path, st: RunStatus, ctx: Context, names: set[str]) -> bool:
    """A `rem train` process holds the folder. Never takes the lock itself: a status reader
    holding it, even for a moment, would make a starting trainer refuse the folder."""
    if LOCK not in names:
        return False
    local = st.host in (None, ctx.host)
    if local and ctx.locks is not None:
        try:
            info = os.stat(path / LOCK)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) in ctx.locks
    if local and st.pid is not None:
        return pid_alive(st.pid)
    # Another host (a cluster node): its lock is not visible here; a recent write says alive.
    limit = max(STALL_FACTOR * (st.epoch_s or 0.0), STALL_MIN_S) if st.epoch_s else STALL_UNKNOWN_S
    return st.since_progress_s is not None and st.since_progress_s <= 4 * limit
