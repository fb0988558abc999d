"""Fixtures shared across test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def quick_run_dir(tmp_path_factory) -> Path:
    """A finished `rem train --preset quick` run folder (Breakout, seed 3), trained once per
    session.

    It is the same run as `training_helpers.reference_run` (the training tests' reference),
    so the session pays for one quick training. Treat it as read-only: copy it
    (`shutil.copytree`) before writing into it. `REM_TEST_QUICK_RUN_DIR=DIR` uses an existing
    complete quick run instead (to iterate on tests that only read a run).
    """
    existing = os.environ.get("REM_TEST_QUICK_RUN_DIR")
    if existing:
        path = Path(existing)
        assert (path / "COMPLETED").is_file(), (
            f"REM_TEST_QUICK_RUN_DIR={path} is not a complete run"
        )
        return path
    from training_helpers import reference_run

    path, proc, _ = reference_run(tmp_path_factory)
    assert proc.returncode == 0, f"rem train --preset quick failed:\n{proc.stderr[-3000:]}"
    return path
