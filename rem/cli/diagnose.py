"""`rem diagnose TOOL ...`: the learning diagnostics of `rem.diagnostics`.

    rem diagnose wm-fit RUN_DIR --updates 1000 [--lr LR] [world_model.KEY=VALUE ...]
    rem diagnose wm-map --games Boxing Pong --out results/learning/wm_map
    rem diagnose tokenizer-drift RUN_DIR [--states A.pt B.pt ...]
    rem diagnose game-probe --games Boxing Breakout --episodes 8

`rem diagnose TOOL --help` gives each tool's options.
"""

from __future__ import annotations

import argparse
import importlib

from rem.diagnostics import TOOLS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="learning diagnostics: world-model fit and map, tokenizer drift, game probe",
        description=__doc__.split("\n\n")[0],
        epilog="`rem diagnose TOOL --help` gives each tool's options.",
    )
    parser.add_argument("tool", choices=sorted(TOOLS), help="which diagnostic")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own arguments")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"rem.diagnostics.{TOOLS[args.tool]}")
    return module.main(args.args, prog=f"rem diagnose {args.tool}")
