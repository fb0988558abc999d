"""`rem status`: where a sweep stands, read from its run folders (never writes to them)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rem.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="state of every run of a sweep: epoch, return, ETA, failures, GPU-hours, coverage",
        description=(
            "Read the run folders of a sweep (manifest, metrics.jsonl, lock, logs) and print one "
            "line per (variant, game, seed): pending, running, stalled, failed or completed, "
            "epoch, latest test return, elapsed time and ETA; for failed runs the error, the log "
            "and the SLURM job. Then counts, GPU-hours spent and remaining, the expected finish "
            "and a coverage grid per variant. Without arguments it reads the workflow config "
            "(config/config.yaml), like `snakemake`; run it where you run Snakemake."
        ),
    )
    parser.add_argument(
        "runs_dir",
        nargs="?",
        metavar="RUNS_DIR",
        help="a runs folder (<variant>/<game>/<seed>/ run folders); default: the config's "
        "runs_dir. Without --configfile only the folders found are listed (no pending runs)",
    )
    parser.add_argument(
        "--configfile",
        action="append",
        metavar="CONFIG",
        help="workflow config on top of config/config.yaml, as for snakemake (repeatable)",
    )
    parser.add_argument(
        "--logs-dir", help="the workflow's logs_dir (default: the config's; none for RUNS_DIR)"
    )
    parser.add_argument(
        "--state",
        help="only list runs in these states, comma-separated (e.g. failed,stalled); the "
        "summary and grid still cover every run",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--png", metavar="FILE", help="also write the coverage grid as a PNG")
    parser.add_argument("--no-grid", action="store_true", help="do not print the coverage grid")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=30.0,
        metavar="SECONDS",
        help="refresh every SECONDS (default 30) until Ctrl-C",
    )
    parser.set_defaults(func=run)


def read(args: argparse.Namespace):
    from rem.ops.status import collect
    from rem.runs.sweep import SweepError, load_sweep

    try:
        sweep = None
        if args.configfile or args.runs_dir is None:
            sweep = load_sweep(args.configfile)
        runs_dir = args.runs_dir if args.runs_dir is not None else sweep.runs_dir
        logs_dir = args.logs_dir or (sweep.logs_dir if sweep is not None else None)
        return collect(runs_dir, sweep=sweep, logs_dir=logs_dir)
    except SweepError as err:
        raise UserError(str(err)) from err


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rem.ops.records import STATES

    states = None
    if args.state:
        states = {s.strip() for s in args.state.split(",") if s.strip()}
        unknown = states - set(STATES)
        if unknown:
            raise UserError(
                f"--state {args.state}: unknown state(s) {', '.join(sorted(unknown))}; choose "
                f"from {', '.join(STATES)}"
            )
    if args.watch is not None and args.watch <= 0:
        raise UserError(f"--watch {args.watch}: the refresh interval must be > 0 seconds")
    console = Console()
    try:
        return _loop(args, console, states)
    except KeyboardInterrupt:  # Ctrl-C ends --watch (or a long read) quietly
        return 0


def _loop(args: argparse.Namespace, console, states: set[str] | None) -> int:
    from rem.ops.status_view import print_status, save_png

    while True:
        status = read(args)
        if args.png:
            save_png(status, args.png)
        if args.json:
            print(json.dumps(status.to_json(), indent=1))
        else:
            if args.watch is not None:
                console.clear()
            print_status(status, console, states, grid=not args.no_grid)
            if args.png:
                console.print(f"coverage grid: {args.png}")
        if args.watch is None:
            return 0
        sys.stdout.flush()
        time.sleep(args.watch)
