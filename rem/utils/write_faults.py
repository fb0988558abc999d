"""Test hook: make the file system refuse one write of a run, for real.

`REM_TEST_WRITE_FAULT=KIND[:EPOCH][@N][=MODE]`: right before the N-th write (default 1) of
KIND (counting only writes while epoch EPOCH runs, as announced by the hooks of
rem.utils.faults, when given), the file system under the run is made to refuse it:

    full      (default) a filler file takes all free space but about half of what the write
              needs, so the write starts and fails with ENOSPC part-way (`FILLER` beside the
              mount point's root; the test deletes it to free the space)
    denied    every folder and file on the file system loses its write permission (EACCES
              for a user without CAP_DAC_OVERRIDE)

For an append (the metrics line), only a write that needs a new page counts: one that fits in
the file's last page takes no space and cannot fail. The hook is meant for a file system made
for the test (a size-limited tmpfs); it acts on the mount point holding the written path.
Unset (normal runs), a write costs one environment lookup.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from rem.utils import faults

ENV_VAR = faults.WRITE_FAULT_VAR
FILLER = "rem-test-filler"
MODES = ("full", "denied")  # read-only: remount before the run (a writable fd blocks it)
PAGE = 4096

# kind -> how its paths look (checked in order). The names are rem.runs.layout's, spelled here
# because rem.utils sits below rem.runs; tests/test_runs.py keeps the two spellings equal.
KINDS = {
    "replay": "a file of a checkpoint's replay/ folder (episode files, manifest)",
    "state": "a checkpoint's state.pt",
    "commit": "checkpoints/LATEST.json (the commit point)",
    "metrics": "metrics.jsonl: a line appended (the rewrite on resume is not counted)",
    "media": "anything under media/ (reconstructions, saved episodes)",
    "scores": "scores.json (the final evaluation)",
    "report": "manifest.json, failures.json or COMPLETED (the run's own reports)",
}

_counts: Counter[tuple[str, int | None]] = Counter()


def write_kind(path: str | Path) -> str | None:
    path = Path(path)
    name, parts = path.name, path.parts
    if "replay" in parts[:-1]:
        return "replay"
    if name == "state.pt" or (name.startswith(".state.pt.") and name.endswith(".tmp")):
        return "state"
    for kind, file in (("commit", "LATEST.json"), ("metrics", "metrics.jsonl")):
        if name == file:
            return kind
    if "media" in parts[:-1]:
        return "media"
    if name == "scores.json":
        return "scores"
    if name in ("manifest.json", "failures.json", "COMPLETED"):
        return "report"
    return None


def parse(spec: str) -> tuple[str, int | None, int, str]:
    """'kind[:epoch][@n][=mode]' -> (kind, epoch or None, n, mode); ValueError naming the
    grammar."""
    rest, _, mode = spec.partition("=")
    head, _, n = rest.partition("@")
    kind, colon, epoch = head.partition(":")
    mode = mode or "full"
    ok = kind in KINDS and mode in MODES and (not colon or epoch.isdigit())
    if not ok or (n and (not n.isdigit() or int(n) < 1)):
        raise ValueError(
            f"{ENV_VAR}={spec!r}: expected KIND[:EPOCH][@N][=MODE] with KIND one of "
            f"{', '.join(KINDS)} and MODE one of {', '.join(MODES)}"
        )
    return kind, int(epoch) if colon else None, int(n) if n else 1, mode


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def _fill(mount: Path, leave: int) -> None:
    """Take every free byte of `mount` but about `leave` (whole pages)."""
    chunk = b"\0" * (1 << 20)
    fd = os.open(mount / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:  # unbuffered: nothing is left to flush (and fail) at close
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError:
                break
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - (leave // PAGE) * PAGE))
    finally:
        os.close(fd)


def _deny(mount: Path) -> None:
    for folder, _dirs, files in os.walk(mount):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)


def _needs_space(path: Path, needed: int, append: bool) -> bool:
    if not append or not path.exists():
        return needed > 0
    size = path.stat().st_size
    return -(-(size + needed) // PAGE) > -(-size // PAGE)


def maybe_refuse(path: str | Path, needed: int, append: bool = False) -> None:
    """Before writing `needed` bytes to `path`: make the file system refuse the write if the
    spec names it (see the module docstring); a no-op unless armed."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    kind, at_epoch, n, mode = parse(spec)
    path = Path(path)
    if write_kind(path) != kind or (at_epoch is not None and at_epoch != faults.current_epoch()):
        return
    if kind == "metrics" and not append:
        return  # the rewrite on resume is not a target: the line appended each epoch is
    if mode == "full" and not _needs_space(path, needed, append):
        return  # this append fits in the file's last page: it cannot run out of space
    _counts[kind, at_epoch] += 1
    if _counts[kind, at_epoch] != n:
        return
    mount = _mount_point(path.parent)
    if mode == "full":
        _fill(mount, needed // 2)
    else:
        _deny(mount)
