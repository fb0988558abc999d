"""`rem wm-eval`: world-model accuracy of a trained run on held-out real data, with baselines.

    rem wm-eval RUN_DIR [--steps 1000] [--source fresh|replay] [--json out.json]

Loads the run's last checkpoint; by default collects `--steps` fresh steps of the run's game
with the run's own train policy in a new train env (never in the replay), then prints the
teacher-forced next-frame token, reward and end figures against their baselines and the
real-versus-imagined pixel error over the imagination horizon (docs/world-model-eval.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rem.cli import UserError

if TYPE_CHECKING:
    import torch

    from rem.config import Config
    from rem.data.replay import Replay
    from rem.evaluation.world_model_eval import WorldModelEval

SOURCES = ["fresh", "replay"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wm-eval",
        help="world-model accuracy of a run on held-out real data, against baselines",
        description=__doc__.split("\n\n")[0]
        + " Figures: next-frame token accuracy and cross-entropy (vs shuffled actions and "
        "repeating the previous frame), reward and end accuracy / F1 (vs the majority class), "
        "imagined-frame pixel MSE per imagination step (vs the tokenizer's reconstruction "
        "and repeating the last real frame). See docs/world-model-eval.md.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a `rem train` run folder")
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="env steps of evaluation data (default 1000); with --source replay, the newest "
        "replay episodes holding at least this many steps",
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="fresh",
        help="fresh (default): held-out steps collected now by the run's train policy in a new "
        "train env; replay: the newest episodes of the checkpoint's replay (trained on: "
        "in-sample figures, to compare with fresh ones)",
    )
    parser.add_argument(
        "--max-segments",
        type=int,
        default=None,
        help="evaluate at most this many windows of each kind (default: all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="evaluation seed (held-out env, policy, shuffles, imagination samples; default 0)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.max_segments is not None and args.max_segments < 1:
        raise UserError(f"--max-segments must be >= 1, got {args.max_segments}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.json is not None and args.json.is_dir():
        raise UserError(f"--json {args.json} is a folder; give a file name such as wm_eval.json")
    if not args.run_dir.is_dir():
        raise UserError(f"RUN_DIR {args.run_dir} is not a folder (give a `rem train` run folder)")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    from rem.utils.device import resolve_device

    device = resolve_device(args.device, "--device")
    agent, cfg, manifest = load_agent(args.run_dir, device)
    figures = evaluate(args, agent, cfg, manifest, device)
    header = report_header(args, cfg, manifest)
    print_figures(header, figures)
    if args.json is not None:
        from rem.utils.atomic import atomic_write_json

        atomic_write_json(args.json, {**header, **figures.to_json()})
        print(f"-> {args.json}")
    return 0


def load_agent(
    run_dir: Path, device: torch.device
) -> tuple[torch.nn.Module, Config, dict[str, Any]]:
    """-> (agent, config, manifest) of the run's last checkpoint; a bad folder is a UserError."""
    import torch

    from rem.training.checkpoint import CheckpointError
    from rem.training.restore import open_run
    from rem.training.run_dir import RunDirError

    try:
        agent, cfg, manifest = open_run(run_dir, device)
    except (CheckpointError, RunDirError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)
    return agent, cfg, manifest


def newest_replay_steps(run_dir: Path, steps: int) -> Replay:
    """The newest episodes of the last checkpoint's replay holding at least `steps` steps."""
    from rem.evaluation.world_model_eval import newest_steps
    from rem.training.restore import latest_replay

    return newest_steps(latest_replay(run_dir), steps)


def evaluate(
    args: argparse.Namespace,
    agent: torch.nn.Module,
    cfg: Config,
    manifest: dict[str, Any],
    device: torch.device,
) -> WorldModelEval:
    """The figures on the data of `--source`; data that cannot be evaluated is a UserError."""
    from rem.config import ConfigError
    from rem.evaluation.world_model_eval import evaluate_run_world_model, evaluate_world_model
    from rem.utils.rng import derived_seed

    run_seed = int(manifest["seed"])
    try:
        if args.source == "fresh":
            figures, _ = evaluate_run_world_model(
                agent,
                cfg,
                manifest["game"],
                run_seed,
                args.seed,
                steps=args.steps,
                device=device,
                max_segments=args.max_segments,
            )
            return figures
        return evaluate_world_model(
            agent.tokenizer,
            agent.world_model,
            newest_replay_steps(args.run_dir, args.steps),
            device=device,
            imagination_horizon=cfg.actor_critic.imagination_horizon,
            batch_size=cfg.training.world_model.batch_size,
            max_segments=args.max_segments,
            seed=derived_seed(run_seed, args.seed),
        )
    except (ValueError, ConfigError, FileNotFoundError) as err:
        raise UserError(f"{args.run_dir}: {err}") from err


def report_header(
    args: argparse.Namespace, cfg: Config, manifest: dict[str, Any]
) -> dict[str, Any]:
    """What was evaluated: printed in the table titles and written first in --json."""
    return {
        "run_dir": str(args.run_dir),
        "game": manifest["game"],
        "variant": manifest["variant"],
        "seed": int(manifest["seed"]),
        "checkpoint_epoch": manifest["checkpoint_epoch"],
        "agent": cfg.agent,
        "pop": cfg.world_model.pop,
        "source": args.source,
        "eval_seed": args.seed,
        "requested_steps": args.steps,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.2e}"
    return str(value)


def print_figures(header: dict[str, Any], figures) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    data = "fresh held-out steps" if header["source"] == "fresh" else "replay steps (trained on)"
    counts = figures.reward_counts
    kind = {"rem": "POP" if header["pop"] else "no-POP"}.get(header["agent"], header["agent"])
    table = Table(
        title=f"World model of {header['game']} / {header['variant']} / seed {header['seed']} "
        f"(epoch {header['checkpoint_epoch']}, {kind}) on "
        f"{figures.steps} {data}, {figures.episodes} episode{'s' * (figures.episodes != 1)}",
        caption=f"{figures.target_frames} next frames ({figures.segments} windows), "
        f"{figures.changed_token_share:.1%} of their tokens differ from the previous frame; "
        f"rewards -1/0/+1: {counts['-1']}/{counts['0']}/{counts['1']}; {figures.end_count} ends",
        title_justify="left",
        caption_justify="left",
    )
    for name in ("figure", "model", "shuffled actions", "repeat previous", "majority class"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    rows = (
        ("token accuracy", figures.token_accuracy),
        ("  on changed tokens", figures.token_accuracy_changed),
        ("token CE (nats)", figures.token_cross_entropy),
    )
    for label, values in rows:
        keys = ("model", "shuffled_actions", "repeat_previous")
        table.add_row(label, *(_fmt(values[k]) for k in keys), "")
    for head in ("reward", "end"):
        values = getattr(figures, head)
        for metric, name in (
            ("accuracy", "accuracy"),
            ("f1", "F1" if head == "end" else "macro-F1"),
        ):
            keys = ("model", "shuffled_actions")
            cells = [_fmt(values[k][metric]) for k in keys]
            table.add_row(f"{head} {name}", *cells, "", _fmt(values["majority"][metric]))
    console.print(table)
    mse = figures.imagination_mse
    steps = Table(
        title=f"Imagined vs real frames: pixel MSE ([0, 1] units) over "
        f"{figures.imagination_segments} open-loop rollouts from 2 real frames, real actions",
        title_justify="left",
    )
    for name in ("step", "imagined", "tokenizer reconstruction", "repeat last real frame"):
        steps.add_column(name, justify="right")
    for i, row in enumerate(zip(mse["model"], mse["reconstruction"], mse["repeat_last"]), start=1):
        steps.add_row(str(i), *(_fmt(v, 4) for v in row))
    means = figures.imagination_mse_mean
    steps.add_row("mean", *(_fmt(means[k], 4) for k in ("model", "reconstruction", "repeat_last")))
    console.print(steps)
