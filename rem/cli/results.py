"""`rem results paper|report`: the same commands as `python -m rem.results`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from rem.results.commands import add_arguments, run

    parser = subparsers.add_parser(
        "results", help="paper tables/figures from published scores; reproduction report"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
