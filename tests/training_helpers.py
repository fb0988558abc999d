"""Helpers shared by the end-to-end training tests: one quick-preset run via the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

GAME, SEED = "Breakout", 3
DETERMINISTIC = "run.deterministic=true"


def rem_exe() -> str:
    """The `rem` script of this interpreter's environment (PATH may not have it)."""
    beside = Path(sys.executable).with_name("rem")
    return str(beside) if beside.exists() else (shutil.which("rem") or "rem")


def rem_cmd(run_dir: Path, *overrides: str) -> list[str]:
    return [
        rem_exe(), "train", "--game", GAME, "--seed", str(SEED), "--variant", "rem",
        "--run-dir", str(run_dir), "--preset", "quick", DETERMINISTIC, *overrides,
    ]  # fmt: skip


# A hang guard, not a speed check: a quick run takes about a minute on 2 idle cores, many
# times that on a shared machine under load (other jobs, `yes` loops beside the suite).
TIMEOUT_S = 2400


def quick_run(run_dir: Path, *overrides: str, kill_at: str | None = None, timeout: int = TIMEOUT_S):
    """-> (run_dir, CompletedProcess, seconds)."""
    env = dict(os.environ)
    env.pop("REM_TEST_KILL_AT", None)
    if kill_at:
        env["REM_TEST_KILL_AT"] = kill_at
    start = time.perf_counter()
    proc = subprocess.run(
        rem_cmd(run_dir, *overrides), capture_output=True, text=True, env=env, timeout=timeout
    )
    return run_dir, proc, time.perf_counter() - start


_REFERENCE: dict[str, tuple] = {}


def reference_run(tmp_path_factory):
    """The uninterrupted quick run, made once per session and shared by the test modules."""
    if "run" not in _REFERENCE:
        _REFERENCE["run"] = quick_run(tmp_path_factory.mktemp("reference") / "run")
    return _REFERENCE["run"]
