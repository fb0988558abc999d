"""`rem evaluate`: exactly N full test episodes of a policy, written as JSON.

    rem evaluate --game Pong --policy random --episodes 10 --seed 0 --out pong.json [--envs K]
    rem evaluate --checkpoint RUN_DIR --episodes 100 --seed 0 --out eval.json

`--policy random` plays uniformly over the game's minimal action set under the paper's (or
`--preset`'s) env protocol; `--checkpoint` plays a trained run's agent with its test policy
under the run's own env protocol. Another policy is one more `--policy` choice and a branch in
`build_policy` (which `Policy` acts and how the results JSON describes it).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import rem
from rem.cli import UserError
from rem.config import EnvConfig, EvaluationConfig
from rem.evaluation.evaluate import evaluate
from rem.games import ATARI_100K_GAMES, TOY_GAMES, UnknownGameError, check_game
from rem.policy import Policy, RandomPolicy

POLICIES = ["random"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EvaluationConfig()
    parser.add_argument(
        "--game", help="Atari 100k game, exact name, e.g. Pong or Breakout, or the toy game Catch"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="random",
        help="random = uniform over the game's minimal action set",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=defaults.final_episodes,
        help=f"exactly this many full test episodes (default {defaults.final_episodes})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the envs and the policy (default 0)"
    )
    parser.add_argument(
        "--envs",
        type=int,
        default=defaults.num_envs,
        help=f"parallel env subprocesses (default {defaults.num_envs})",
    )
    parser.add_argument("--out", type=Path, help="write the results JSON here (atomically)")
    parser.add_argument(
        "--preset",
        help="play under this preset's env protocol (e.g. small: its test-episode cap), so a "
        "random baseline matches the runs it is compared with (default: the paper protocol)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="RUN_DIR",
        help="evaluate the agent of a `rem train` run folder (its last checkpoint) with the test "
        "policy (temperature 0.5, no epsilon) and the run's env protocol; the game comes from "
        "the run (--policy is ignored)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="play N test episodes with a policy and write the scores as JSON",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=handler)


def resolve_game(args: argparse.Namespace) -> str:
    if getattr(args, "checkpoint", None) is not None:
        from rem.training.restore import read_run
        from rem.training.run_dir import RunDirError

        try:
            game = read_run(args.checkpoint).game
        except RunDirError as err:
            raise UserError(f"--checkpoint: {err}") from err
        if args.game is not None and args.game != game:
            raise UserError(f"--game {args.game} but {args.checkpoint} is a {game} run")
        return game
    if args.game is None:
        raise UserError(f"--game is required; one of: {', '.join(ATARI_100K_GAMES + TOY_GAMES)}")
    try:
        return check_game(args.game)
    except UnknownGameError as err:
        raise UserError(str(err)) from err


def build_policy(args: argparse.Namespace, game: str) -> tuple[Policy, dict[str, Any]]:
    """The acting policy and how the results JSON describes it."""
    from rem.envs.atari import num_actions

    if getattr(args, "checkpoint", None) is not None:
        return _checkpoint_policy(args, game)
    if args.policy == "random":
        return RandomPolicy(num_actions(game), seed=args.seed), {"policy": "random"}
    raise UserError(f"unknown --policy {args.policy!r}; choose from {', '.join(POLICIES)}")


def _checkpoint_policy(args: argparse.Namespace, game: str) -> tuple[Policy, dict[str, Any]]:
    """The test policy of a trained run (rem.training owns this branch)."""
    import torch

    from rem.evaluation.agent_policy import AgentPolicy
    from rem.training.checkpoint import CheckpointError
    from rem.training.restore import open_run
    from rem.training.run_dir import RunDirError
    from rem.utils.device import resolve_device

    device = resolve_device("auto")
    try:
        agent, cfg, manifest = open_run(args.checkpoint, device)
    except (CheckpointError, RunDirError) as err:
        raise UserError(str(err)) from err
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)
    torch.manual_seed(args.seed)  # the policy samples actions with torch's generator
    temperature = cfg.collection.test_temperature
    policy = AgentPolicy(agent, temperature, 0.0, device, seed=args.seed)
    args.env_cfg = cfg.env  # evaluate with the run's env protocol
    return policy, {
        "policy": "checkpoint",
        "run_dir": str(args.checkpoint),
        "checkpoint_epoch": manifest["checkpoint_epoch"],
        "variant": manifest["variant"],
        "run_seed": manifest["seed"],
        "temperature": temperature,
    }


def check_arguments(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.envs < 1:
        raise UserError(f"--envs must be >= 1, got {args.envs}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.out is not None and args.out.is_dir():
        raise UserError(
            f"--out {args.out} is a folder; give a file name such as {args.out / 'scores.json'}"
        )


def preset_env(preset: str | None) -> EnvConfig:
    """The env protocol of a preset (`None`: the paper's)."""
    if preset is None:
        return EnvConfig()
    from rem.config import ConfigError, load_config

    try:
        return load_config(preset).env
    except ConfigError as err:
        raise UserError(f"--preset {preset}: {err}") from err


def handler(args: argparse.Namespace) -> int:
    check_arguments(args)
    game = resolve_game(args)
    policy, description = build_policy(args, game)
    env_cfg = getattr(args, "env_cfg", None) or preset_env(args.preset)
    result = evaluate(game, policy, args.episodes, args.seed, args.envs, env_cfg)
    payload = {
        **result.to_json(),
        **description,
        "env_id": f"{game}NoFrameskip-v4",
        "protocol": dataclasses.asdict(env_cfg),
        "rem_version": rem.__version__,
    }
    if args.out is not None:
        from rem.utils.atomic import atomic_write_json

        atomic_write_json(args.out, payload)
    print(
        f"{game}: mean return {result.mean_return:.2f} +- {result.std_return:.2f} (std) over "
        f"{result.episodes} episodes, mean length {payload['mean_length']:.0f} steps, "
        f"{result.seconds:.0f} s" + (f" -> {args.out}" if args.out else ""),
        file=sys.stdout,
    )
    return 0
