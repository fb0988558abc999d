"""The `rem` command line: one module per subcommand, each exposing `register(subparsers)`.

A subcommand module adds its parser with `set_defaults(func=...)`; `func(args)` returns an
exit code. Errors meant for the user are raised as `UserError` (or `ConfigError`) and
printed without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rem.config import ConfigError

# Subcommand modules under rem.cli, in help order.
COMMANDS = [
    "evaluate", "weights", "train", "summary", "bench", "results", "play", "video", "wm-eval",
    "status", "plan", "convert-checkpoint", "diagnose",
]  # fmt: skip


class UserError(Exception):
    """Bad input from the user: printed as `rem: error: ...`, exit code 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All subcommands, or only `only` (a command line naming one imports just its module:
    `rem status` stays fast because it never imports torch)."""
    parser = argparse.ArgumentParser(
        prog="rem", description="REM world-model agent on Atari 100k: train, evaluate, watch."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"rem.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as err:
        print(f"rem {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # storage full, read-only or forbidden: not a bug, not bad input
        from rem.utils.disk_errors import describe, is_refusal

        if not is_refusal(err):
            raise
        print(f"rem {args.command}: error: {describe(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
