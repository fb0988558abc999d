"""`rem bench ...`: the speed benchmarks of `benchmarks/` (same arguments as
`python -m benchmarks`; `rem bench --help` lists them).

The benchmarks live in the repository, not in the installed package, so this command needs
a source checkout (the editable install of the README does that).
"""

from __future__ import annotations

import argparse
import sys

from rem.cli import UserError
from rem.utils.paths import repo_root

ROOT = repo_root()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="speed benchmarks of the hot paths (table + JSON); see `rem bench --help`",
        add_help=False,  # --help goes to the benchmarks' own parser
        prefix_chars="+",  # so every "-x" argument is passed through untouched
    )
    parser.add_argument("bench_args", nargs="*")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (ROOT / "benchmarks" / "cli.py").is_file():
        raise UserError(
            f"no benchmarks/ folder next to the rem package ({ROOT}); `rem bench` needs a source "
            "checkout: clone the repository and `pip install -e .` it"
        )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.cli import main

    return main(args.bench_args, prog="rem bench")
