"""Where the project is: one answer for every module.

`repo_root()` is the source checkout that holds the `rem` package, with `config/`,
`workflow/` and `benchmarks/` beside it (the project is installed editable, `pip install -e
.`). `project_root()` is the project a command works in: the nearest folder at or above the
working directory holding both `Snakefile` and `pyproject.toml`; reports name files relative
to it. Snakemake files find their own folders through `workflow.basedir`.
"""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The checkout holding the `rem` package (this file is rem/utils/paths.py)."""
    return Path(__file__).resolve().parents[2]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) holding
    `Snakefile` and `pyproject.toml`; `start` itself when there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Snakefile").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return here
