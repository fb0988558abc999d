"""`rem summary`: the resolved config of a run and the parameter count of each component."""

from __future__ import annotations

import argparse
import json

import yaml

from rem.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="print the resolved config and per-component parameter counts",
        description=(
            "Resolve preset -> variant -> overrides exactly as `rem train` does, print the "
            "config (YAML) and the parameters of the tokenizer, world model and actor-critic "
            "for the game's action set. Builds the models on CPU; downloads nothing."
        ),
    )
    parser.add_argument("--game", required=True, help="Atari 100k game (sets the action count)")
    parser.add_argument(
        "--variant",
        default=None,
        help="variant in config/variants (default: the preset's agent, rem or iris)",
    )
    parser.add_argument(
        "--preset", default="paper", help="preset in config/presets (default paper)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(func=run)


def parameter_counts(agent) -> dict[str, dict[str, int]]:
    """Trainable and frozen parameters per component (frozen = LPIPS/VGG in the tokenizer)."""
    counts = {}
    for name in ("tokenizer", "world_model", "actor_critic"):
        module = getattr(agent, name)
        params = list(module.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        counts[name] = {
            "trainable": trainable,
            "frozen": sum(p.numel() for p in params) - trainable,
        }
    # The WM may share the tokenizer's codebook: count each tensor once in the total.
    unique = {id(p): p for p in agent.parameters()}.values()
    counts["total"] = {
        "trainable": sum(p.numel() for p in unique if p.requires_grad),
        "frozen": sum(p.numel() for p in unique if not p.requires_grad),
    }
    return counts


def run(args: argparse.Namespace) -> int:
    from rem.config import load_config, preset_agent
    from rem.envs.atari import num_actions
    from rem.games import check_game
    from rem.models.agent import build_agent

    try:
        game = check_game(args.game)
    except ValueError as err:
        raise UserError(str(err)) from err
    args.variant = args.variant or preset_agent(args.preset)
    cfg = load_config(args.preset, args.variant, args.overrides)
    actions = num_actions(game)
    agent = build_agent(cfg, actions, load_perceptual_weights=False)
    counts = parameter_counts(agent)
    if args.json:
        print(
            json.dumps(
                {
                    "game": game,
                    "variant": args.variant,
                    "agent": cfg.agent,
                    "preset": args.preset,
                    "num_actions": actions,
                    "config": cfg.to_dict(),
                    "parameters": counts,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"# rem summary: game {game} ({actions} actions), preset {args.preset}, variant {args.variant}"
    )
    print(f"# agent: {cfg.agent}; tokens per frame: {cfg.tokens_per_frame}")
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip())
    print()
    print(f"{'component':<14}{'trainable':>14}{'frozen':>14}")
    for name, c in counts.items():
        print(f"{name:<14}{c['trainable']:>14,}{c['frozen']:>14,}")
    return 0
