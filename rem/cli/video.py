"""`rem video RUN_DIR --mode MODE --out FILE.mp4`: export a view of a run without a window."""

from __future__ import annotations

import argparse
from pathlib import Path

from rem.cli import UserError
from rem.cli.play import add_view_arguments, open_view


def register(subparsers: argparse._SubParsersAction) -> None:
    from rem.viewer.modes import INTERACTIVE_ONLY, MODES

    modes = [m for m in MODES if m not in INTERACTIVE_ONLY]
    parser = subparsers.add_parser(
        "video",
        help="export an MP4 (and optionally a PNG strip) of a run: agent, world model, episodes",
        description="Render a view of a run folder to an MP4 with imageio's ffmpeg.\n\nmodes:\n"
        + "\n".join(f"  {name:17s} {MODES[name]}" for name in modes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (rem train --run-dir)")
    parser.add_argument("--mode", choices=modes, default="real-vs-imagined", help="what to show")
    parser.add_argument("--out", required=True, help="output video, FILE.mp4")
    parser.add_argument(
        "--steps", type=int, default=200, help="agent steps to render (default 200)"
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="stop after this many finished episodes (default: only --steps limits)",
    )
    parser.add_argument("--fps", type=float, default=15.0, help="video frame rate (default 15)")
    parser.add_argument("--header", action="store_true", help="draw action, reward, done")
    add_view_arguments(parser)
    parser.add_argument(
        "--still",
        default=None,
        metavar="FILE.png",
        help="also write a PNG strip of the first steps",
    )
    parser.add_argument(
        "--still-steps", type=int, default=10, help="columns (steps) in the still (default 10)"
    )
    parser.add_argument(
        "--still-start",
        type=int,
        default=0,
        help="first step shown in the still (default 0; later steps show more play)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rem.viewer.video import export_video, play_episode, rollout, strip, write_png

    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"--out must be an .mp4 file, got {out}")
    if args.still is not None and Path(args.still).suffix.lower() != ".png":
        raise UserError(f"--still must be a .png file, got {args.still}")
    if args.steps < 1 or args.fps <= 0 or args.still_steps < 1:
        raise UserError("--steps and --still-steps must be >= 1 and --fps > 0")
    if not 0 <= args.still_start < args.steps:
        raise UserError(f"--still-start must be in 0..{args.steps - 1} (within --steps)")
    info, view = open_view(args)

    if args.mode == "episodes":
        frames = play_episode(view, args.steps)
    else:
        frames = rollout(view, args.steps, episodes=args.episodes)
    export_video(frames, out, args.fps, args.header)
    print(f"video: {out} ({len(frames)} frames, {view.title})")
    if args.still is not None:
        write_png(args.still, strip(frames[args.still_start :], args.still_steps))
        print(f"still: {args.still}")
    return 0
