"""`rem weights fetch|check`: the pretrained files of the perceptual (LPIPS) loss."""

from __future__ import annotations

import argparse
from pathlib import Path

from rem import weights


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="download or check the VGG16 / LPIPS weights of the perceptual loss",
        description=(
            "The tokenizer's perceptual loss needs torchvision's VGG16 ImageNet weights and the "
            "LPIPS v0.1 linear weights. `fetch` downloads them (needs internet) and verifies "
            "checksums; `check` reports what is present. Folder: --dir, else $REM_WEIGHTS_DIR, "
            "else tokenizer.weights_dir of the paper preset."
        ),
    )
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    fetch = sub.add_parser("fetch", help="download missing files into the cache folder")
    fetch.add_argument("--dir", type=Path, default=None, help="cache folder")
    fetch.add_argument(
        "--lpips-wheel",
        type=Path,
        default=None,
        help="take the LPIPS lin weights from a local lpips wheel "
        "(`pip download lpips==0.1.4 --no-deps`) instead of downloading them",
    )
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds per connection")
    fetch.set_defaults(func=_fetch)
    check = sub.add_parser("check", help="say which files are present and valid")
    check.add_argument("--dir", type=Path, default=None, help="cache folder")
    check.set_defaults(func=_check)


def _directory(args: argparse.Namespace) -> Path:
    if args.dir is not None:
        return args.dir.expanduser().resolve()
    from rem.config import load_config

    return weights.weights_dir(load_config("paper").tokenizer.weights_dir)


def _fetch(args: argparse.Namespace) -> int:
    from rem.cli import UserError

    directory = _directory(args)
    try:
        weights.fetch(directory, lpips_wheel=args.lpips_wheel, timeout=args.timeout)
    except weights.WeightsError as err:
        raise UserError(str(err)) from err
    print(f"all weight files present in {directory}")
    return 0


def _check(args: argparse.Namespace) -> int:
    directory = _directory(args)
    problems = weights.status(directory)
    for spec in weights.WEIGHT_FILES:
        problem = problems[spec.key]
        state = "ok" if problem is None else problem
        print(f"{spec.key:10s} {state:12s} {directory / spec.filename}  ({spec.description})")
    if any(problems.values()):
        print(f"missing or invalid files; fix: {weights.fix_command(directory)}")
        return 1
    return 0
