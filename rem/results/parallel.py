"""Several results commands at once, in forked processes that share one set of imports.

    python -m rem.results parallel --logs A.log B.log -- paper --study main ::: plan-seeds

The plotting and statistics stack (matplotlib, seaborn, scipy, pandas, rliable) takes about
two seconds of CPU to import, as long as a study's own work: `snakemake paper` runs its three
commands (the two studies and the seed planner) through this, importing once and forking one
process per command, each writing its own log. The operating system shares the rule's cores
among them. A command's output files are the same as when it runs alone: a forked child
starts from the parent's state right after the imports, as a fresh process would.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

SEPARATOR = ":::"


def split_commands(words: list[str]) -> list[list[str]]:
    """`paper --study main ::: plan-seeds` -> [['paper', '--study', 'main'], ['plan-seeds']]."""
    commands: list[list[str]] = [[]]
    for word in words:
        if word == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(word)
    return commands


def preload() -> None:
    """Import what the commands import lazily (the figures' rliable plots, the PDF backend)."""
    import matplotlib.backends.backend_pdf  # noqa: F401
    import rliable.plot_utils  # noqa: F401

    import rem.results.reports.paper  # noqa: F401
    import rem.results.reports.seed_plan  # noqa: F401


def _child(argv: list[str], log: Path, run_one: Callable[[list[str]], int]) -> None:
    """In the forked process: stdout and stderr to `log`, run the command, exit with its code."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # Python-level output too (the parent's sys.stdout may be another object, e.g. pytest's).
        sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        code = run_one(argv)
    except BaseException:  # noqa: BLE001 - the log gets the traceback, the parent the code
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_forked(
    commands: list[list[str]], logs: list[Path], run_one: Callable[[list[str]], int]
) -> int:
    """Run every command in its own forked process at once; the worst exit code (0: all
    succeeded). A failed command is named on stderr with its log."""
    for log in logs:
        log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    children = {}
    for argv, log in zip(commands, logs, strict=True):
        pid = os.fork()
        if pid == 0:
            _child(argv, log, run_one)
        children[pid] = (argv, log)
    worst = 0
    while children:
        pid, status = os.wait()
        argv, log = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            print(
                f"rem.results parallel: `{' '.join(argv)}` failed (exit {code}); see {log}",
                file=sys.stderr,
            )
            worst = max(worst, code if code > 0 else 1)
    return worst
