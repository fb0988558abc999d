"""A run's logs as `rem status` reads them: the workflow's per-run log, its attempts log
(the SLURM job of each attempt) and SLURM's own log, for the error line of a failed run.

The workflow writes each run's log to LOGS_DIR/train/<variant>/<game>/<seed>.log (this
attempt) and .attempts.log (all attempts, each starting with
`== job start on HOST at TIME (SLURM job ID)`). Only tails are read, only for failed runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rem.ops.records import RunStatus, fmt_duration
from rem.runs.layout import RunKey

SLURM_LOG_DIR = "logs/slurm"  # profiles/slurm: slurm-logdir (relative to the workflow's folder)
JOB_RE = re.compile(r"== job start on (\S+) at (\S+) \(SLURM job ([^)]+)\)")
ERROR_RE = re.compile(
    r"error|exception|traceback|killed|cancelled|time limit|out of memory|oom|non-finite",
    re.IGNORECASE,
)


def log_tail(path: Path, max_bytes: int = 16 * 1024) -> list[str]:
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


def last_error_line(lines: list[str]) -> str | None:
    text = "\n".join(lines).lower()
    if not any(word in text for word in ERROR_WORDS):  # the usual case: one pass, no regex
        return None
    for line in reversed(lines):
        if ERROR_RE.search(line) and not line.startswith("=="):
            return line.strip()[:300]
    return None


def log_path(logs_dir: Path, key: RunKey) -> Path:
    return logs_dir / "train" / key.variant / key.game / f"{key.seed}.log"


def slurm_job(logs_dir: Path, key: RunKey) -> str | None:
    """The SLURM job of the run's latest attempt (its attempts log's last `== job start`)."""
    attempts = log_path(logs_dir, key).with_name(f"{key.seed}.attempts.log")
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


def slurm_log(key: RunKey, job: str) -> Path | None:
    """The SLURM job's own log, where profiles/slurm puts it (slurm-logdir: logs/slurm):
    rule_train/<variant>_<game>_<seed>/<job>.log, or train_pack_<i>/<job>.log for a pack."""
    base = Path(SLURM_LOG_DIR)
    direct = base / "rule_train" / f"{key.variant}_{key.game}_{key.seed}" / f"{job}.log"
    if direct.exists():
        return direct
    return next(iter(sorted(base.glob(f"rule_train_pack_*/{job}.log"))), None)


def explain_failure(
    st: RunStatus,
    key: RunKey,
    manifest: dict | None,
    failed_line: dict | None,
    *,
    logs_dir: Path | None,
    host: str,
) -> None:
    """Why a failed run stopped: its failed epoch line, the manifest's error, the last error
    line of its log or of its SLURM job's log, else what a silent stop means."""
    error = None
    if logs_dir is not None:
        log = log_path(logs_dir, key)
        if log.exists():
            st.log = str(log)
            error = last_error_line(log_tail(log))
    if error is None and st.slurm_job:  # SLURM writes time limits and OOM kills to its own log
        job_log = slurm_log(key, st.slurm_job)
        if job_log is not None:
            st.notes.append(f"SLURM log {job_log}")
            error = last_error_line(log_tail(job_log))
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
    if st.host not in (None, host):
        st.notes.append(
            f"ran on host {st.host}: no change for {fmt_duration(st.since_progress_s)}, and its "
            "process is not visible from here"
        )
