"""File names in reports: relative to the project root, never an absolute path.

A report that says `/home/alice/rem/results/published` is wrong on every other machine.
`display_path` gives the path relative to the project root (the nearest folder above the
working directory holding both `Snakefile` and `pyproject.toml`, else the working
directory); a path outside it is given relative to the report's own folder, so links in the
report still work.
"""

from __future__ import annotations

import os
from pathlib import Path

from rem.utils.paths import project_root


def display_path(path: str | Path, report_dir: str | Path | None = None) -> str:
    """`path` for a report: relative to the project root, else to `report_dir`."""
    p = Path(os.path.abspath(Path(path)))
    root = project_root()
    try:
        return p.relative_to(root).as_posix() or "."
    except ValueError:
        base = Path(os.path.abspath(report_dir)) if report_dir is not None else root
        return Path(os.path.relpath(p, base)).as_posix()
