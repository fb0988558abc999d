"""Writes the file system refuses (full, read-only, no permission): one line naming the path.

A run writes to shared storage that can fill up, be remounted read-only or change owner. Such
an OSError carries no path when it comes from `write()` or `fsync()`, so every write of a run
goes through `guard(path, needed)`, which re-raises it as a `WriteRefused` naming the file, the
bytes the write needed and the bytes free on that file system. The command line turns it into
one line (`rem train` adds the committed checkpoint that the run resumes from).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# errno -> what to do about it
REFUSALS = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "free space within your quota there",
    errno.EROFS: "make the file system writable again (it is mounted read-only)",
    errno.EACCES: "give this user write permission on the run folder",
    errno.EPERM: "give this user write permission on the run folder (or clear its attributes)",
}


def is_refusal(err: BaseException) -> bool:
    """True for an OSError that means the file system refused a write (not a bug)."""
    return isinstance(err, OSError) and err.errno in REFUSALS


def human(n: int) -> str:
    """Bytes as '1.5 MB' (decimal units, as `df -H`)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"  # pragma: no cover - the loop always returns


def free_bytes(path: str | Path) -> int | None:
    """Bytes free for this user on the file system of `path` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class WriteRefused(OSError):
    """A write of `path` refused by the file system; `needed` = the bytes it was writing."""

    def __init__(self, err: OSError, path: str | Path, needed: int | None) -> None:
        super().__init__(err.errno, err.strerror, str(path))
        self.needed = needed
        self.free = free_bytes(path)  # now, before the caller deletes what it wrote

    def __str__(self) -> str:
        return describe(self)


def describe(err: OSError) -> str:
    """One line: what was refused, where, the space involved and the fix."""
    where = err.filename or "a file of the run"
    text = f"cannot write {where}: {err.strerror or os.strerror(err.errno or 0)}"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        needed = getattr(err, "needed", None)
        free = getattr(err, "free", None) if err.filename else None
        if needed is not None:
            text += f"; the write needed {human(needed)}"
        if free is not None:
            text += f", {human(free)} free there"
    return f"{text}. Fix: {REFUSALS.get(err.errno or 0, 'fix the file system')}"


@contextmanager
def guard(path: str | Path, needed: int | None) -> Iterator[None]:
    """Re-raise a refused write inside the block as WriteRefused(path, needed)."""
    try:
        yield
    except WriteRefused:
        raise
    except OSError as err:
        if err.errno not in REFUSALS:
            raise
        raise WriteRefused(err, path, needed) from err
