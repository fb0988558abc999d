"""`rem play RUN_DIR`: watch a trained run in a pygame window (or play inside its world model)."""

from __future__ import annotations

import argparse

from rem.cli import UserError

KEYS_HELP = """\
viewer keys: Enter reset | . pause | , start/stop recording (media/recordings/) | Esc/q quit
human-wm:    space fire | w a s d move | arrows move+fire | t r g f diagonals | u y j h diagonals+fire
             (combined and filtered to the game's actions)
episodes:    left/right +-1 frame | page up/down +-10 | space play | up/down next/previous episode
             | t y i s train/test/imagination/saved set
save mode:   after each episode "Save episode? [Y/n]" -> media/episodes/saved/
"""


def open_view(args: argparse.Namespace):
    """The run folder and the view that `rem play` and `rem video` show -> (info, view);
    a missing or broken run folder is a UserError naming it."""
    from rem.training.checkpoint import CheckpointError
    from rem.training.restore import read_run
    from rem.training.run_dir import RunDirError
    from rem.viewer.modes import ViewOptions, build_view

    try:
        info = read_run(args.run_dir)
        options = ViewOptions(args.seed, args.temperature, args.device, args.episode_set)
        return info, build_view(args.mode, info, options)
    except (RunDirError, CheckpointError, FileNotFoundError) as err:
        raise UserError(str(err)) from err


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that `rem play` and `rem video` share."""
    parser.add_argument("--seed", type=int, default=0, help="env and policy seed (default 0)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="agent sampling temperature (default: the run's test temperature, 0.5 in the paper "
        "protocol; the reference play tool used 1.0)",
    )
    parser.add_argument("--device", default="auto", help="torch device (default auto)")
    parser.add_argument(
        "--episode-set",
        choices=["train", "test", "imagination", "saved"],
        default=None,
        help="episodes mode: which set (default: the first with episodes)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from rem.viewer.modes import MODES

    parser = subparsers.add_parser(
        "play",
        help="watch a run: the agent, the world model, you in the world model, saved episodes",
        description="Open a pygame window on a run folder written by `rem train`.\n\nmodes:\n"
        + "\n".join(f"  {name:17s} {text}" for name, text in MODES.items()),
        epilog=KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (rem train --run-dir)")
    parser.add_argument("--mode", choices=list(MODES), default="agent", help="what to show")
    parser.add_argument("--fps", type=float, default=15.0, help="steps per second (default 15)")
    parser.add_argument("--header", action="store_true", help="show action, reward, done")
    parser.add_argument(
        "--save-mode", action="store_true", help="ask after each episode whether to keep it"
    )
    add_view_arguments(parser)
    parser.add_argument(
        "--window-height", type=int, default=800, help="window height in pixels (integer upscale)"
    )
    parser.add_argument(
        "--max-ticks", type=int, default=None, help="quit after N frames (headless runs)"
    )
    parser.add_argument(
        "--script",
        default="",
        metavar="TICK:KEY ...",
        help="scripted key presses, e.g. '2:, 5:d 40:,' (pygame key names; ',' toggles "
        "recording). With SDL_VIDEODRIVER=dummy and --max-ticks this runs without a display",
    )
    parser.set_defaults(func=run)


def parse_script(text: str) -> dict[int, list[str]]:
    """'2:, 5:d' -> {2: [','], 5: ['d']}."""
    script: dict[int, list[str]] = {}
    for item in text.split():
        tick, sep, key = item.partition(":")
        if not sep or not tick.isdigit() or not key:
            raise UserError(f"--script item {item!r} must look like TICK:KEY, e.g. 5:d or 2:,")
        script.setdefault(int(tick), []).append(key)
    return script


def describe_keys(meanings: list[str]) -> str:
    """'space FIRE, d RIGHT, ...' for the keys that do something in this game."""
    from rem.viewer.keymap import KeyMap

    keymap = KeyMap(meanings)
    return ", ".join(f"{key} {meanings[keymap.action({key})]}" for key in keymap.keys)


def run(args: argparse.Namespace) -> int:
    from rem.viewer.app import NoDisplayError, ScriptedEvents, Viewer, key_events
    from rem.viewer.episodes import save_episode
    from rem.viewer.recording import Recorder

    if args.fps <= 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    script = parse_script(args.script)
    info, view = open_view(args)

    if args.mode == "human-wm":
        print(f"{info.game} keys: {describe_keys(info.meanings)} | Enter reset, Esc quit")
    events = None
    if script:
        try:
            events = ScriptedEvents({t: key_events(*keys) for t, keys in script.items()})
        except ValueError as err:  # pygame.key.key_code on an unknown name
            raise UserError(f"--script: {err}") from err
    viewer = Viewer(
        view,
        fps=args.fps,
        header=args.header,
        recorder=Recorder(info.recordings_dir, fps=args.fps),
        save_episode=(lambda frames: save_episode(info.episodes_dir, frames))
        if args.save_mode
        else None,
        events=events,
        window_height=args.window_height,
        max_ticks=args.max_ticks,
    )
    try:
        result = viewer.run()
    except NoDisplayError as err:
        raise UserError(str(err)) from err
    for path in result.recordings:
        print(f"recording: {path} (+ {path.with_suffix('.npy').name})")
    for path in result.saved_episodes:
        print(f"saved episode: {path}")
    return 0
