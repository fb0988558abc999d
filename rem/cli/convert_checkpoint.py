"""`rem convert-checkpoint RUN_DIR --i-trust-this-folder`: rewrite an older run's checkpoints
in the safe state format, once, for a folder whose origin you trust (docs/recovery.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rem.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-checkpoint",
        help="convert an older run's checkpoints to the safe format (trusted folders only)",
        description=(
            "rem loads state files with torch.load(weights_only=True), which never runs code. "
            "Checkpoints written by an older rem need the unpickler that can run code; this "
            "command reads them that way once, after you confirm that you trust the folder, "
            "and rewrites them in plain types (the latest checkpoint and its fallback, "
            "LATEST.json updated). Never run it on a folder from a source you do not trust."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a `rem train` run folder")
    parser.add_argument(
        "--i-trust-this-folder",
        dest="trust",
        action="store_true",
        help="confirm that the folder comes from a source you trust (its files may run code)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rem.training.checkpoint import CheckpointError
    from rem.training.convert import convert_run

    if not args.run_dir.is_dir():
        raise UserError(f"run folder {args.run_dir} does not exist")
    try:
        lines = convert_run(args.run_dir, args.trust)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    for line in lines:
        print(line)
    return 0
