"""`rem train`: one training run into a run folder (resumes it if it has a checkpoint)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rem.cli import UserError

if TYPE_CHECKING:  # `rem --help` stays light: the config loads when a run starts
    from rem.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one agent (game, seed, variant) into a run folder; resumes if interrupted",
        description=(
            "Train REM on one Atari 100k game. The run folder gets manifest.json, metrics.jsonl, "
            "checkpoints/, media/, scores.json and finally COMPLETED. Re-running the same command "
            "resumes from the last checkpoint (or the previous one, with a warning, if the last is "
            "damaged); on a finished run it only writes COMPLETED again if it is missing. A folder "
            "of another game, seed, variant or config is refused. One process per run folder: a "
            "second one refuses, naming the first."
        ),
    )
    parser.add_argument(
        "--game", required=True, help="Atari 100k game, e.g. Breakout, or the toy game Catch"
    )
    parser.add_argument("--seed", type=int, required=True, help="run seed")
    parser.add_argument(
        "--variant",
        default=None,
        help="variant file in config/variants (default: the preset's agent, rem or iris)",
    )
    parser.add_argument("--run-dir", required=True, help="run folder (created if missing)")
    parser.add_argument(
        "--preset",
        default="paper",
        help="preset in config/presets: paper, quick, small, toy (REM), iris, iris_quick (IRIS)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="delete what the run folder holds (checkpoints, metrics, media, scores, manifest, "
        "COMPLETED) and train from scratch, even if the run is finished or has another config",
    )
    parser.add_argument(
        "--disk-margin",
        type=float,
        default=0.1,
        help="free space asked beyond the run's disk estimate (as `rem plan` computes it), as "
        "a fraction (default 0.1); below it the run refuses to start",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. run.epochs=10"
    )
    parser.set_defaults(func=run)


def check_inputs(cfg: Config, run_dir: Path) -> None:
    """Expected problems, found before the run folder is touched: a run folder that cannot be
    created, and (for a run that has no checkpoint yet) missing perceptual-loss weights."""
    from rem.runs.layout import checkpoints_dir
    from rem.training.checkpoint import CheckpointError, read_latest
    from rem.weights import WeightsError, require_perceptual_weights, weights_dir

    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir} is a file; give a folder")
    try:
        resuming = read_latest(checkpoints_dir(run_dir)) is not None
    except CheckpointError:
        resuming = True  # the trainer says what is wrong with it, and falls back if it can
    if cfg.tokenizer.perceptual_loss and not resuming:  # a checkpoint holds the LPIPS tensors
        try:
            require_perceptual_weights(weights_dir(cfg.tokenizer.weights_dir))
        except WeightsError as err:
            raise UserError(str(err)) from err
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--run-dir {run_dir}: cannot create it ({err.strerror})") from err


def check_disk(cfg: Config, run_dir: Path, margin: float) -> None:
    """Refuse (one line, the numbers) when the run folder's file system lacks what the run
    still needs; a finished run writes nothing, so it is not checked."""
    from rem.ops.plan import headroom
    from rem.runs.layout import COMPLETED

    if margin < 0:
        raise UserError(f"--disk-margin {margin}: a fraction >= 0 (0.1 = 10% above the estimate)")
    if (run_dir / COMPLETED).is_file():
        return
    refusal = headroom(cfg, run_dir, margin)
    if refusal is not None:
        raise UserError(refusal)


def run(args: argparse.Namespace) -> int:
    from rem.config import load_config, preset_agent
    from rem.games import check_game
    from rem.training.checkpoint import CheckpointError
    from rem.training.health import NonFiniteError
    from rem.training.run_dir import RunDirError
    from rem.training.trainer import train
    from rem.utils.disk_errors import describe, is_refusal
    from rem.utils.jsonl import JsonlError
    from rem.weights import WeightsError

    try:
        game = check_game(args.game)
    except ValueError as err:
        raise UserError(str(err)) from err
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    args.variant = args.variant or preset_agent(args.preset)
    cfg = load_config(args.preset, args.variant, args.overrides)
    check_inputs(cfg, Path(args.run_dir))
    check_disk(cfg, Path(args.run_dir), args.disk_margin)
    try:
        train(
            cfg,
            game=game,
            seed=args.seed,
            variant=args.variant,
            run_dir=args.run_dir,
            preset=args.preset,
            overrides=list(args.overrides),
            retrain=args.retrain,
        )
    except (RunDirError, CheckpointError, WeightsError, JsonlError) as err:
        raise UserError(str(err)) from err
    except NonFiniteError as err:  # a health alarm: the run failed, not the command line
        print(f"rem train: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # full, read-only or forbidden storage: the run failed, nothing lost
        if not is_refusal(err):
            raise
        print(
            f"rem train: error: {describe(err)}; {resume_note(Path(args.run_dir))}", file=sys.stderr
        )
        return 1
    return 0


def resume_note(run_dir: Path) -> str:
    """What a refused write left: the committed checkpoint the same command resumes from."""
    from rem.runs.layout import checkpoints_dir
    from rem.training.checkpoint import CheckpointError, read_latest

    try:
        record = read_latest(checkpoints_dir(run_dir))
    except CheckpointError as err:
        return str(err)
    if record is None:
        return "no checkpoint was committed yet: then run the same command again to start over"
    return (
        f"nothing is lost: then run the same command again, it resumes from the committed "
        f"checkpoint of epoch {record['epoch']}"
    )
