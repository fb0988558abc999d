"""Which games show early learning on a CPU budget: random policy against constant actions.

A game where one fixed action (or the best of them) scores far above a uniform-random policy,
relative to the random policy's spread, rewards the first thing an agent can learn: a
state-independent preference. Such games show learning within a few thousand env steps; games
where only state-dependent play pays (Pong, Breakout beyond serving) do not. This is the
evidence behind the games of `config/learning.yaml`.

    rem diagnose game-probe --games Boxing Breakout Krull RoadRunner KungFuMaster Pong \
        --episodes 8 --max-steps 2500 --out results/learning/game_probe.json

Test protocol (`make_env(train=False)`), episodes capped at `--max-steps` agent steps so every
game costs about the same; per game: mean and standard error of the random policy's return and
of each constant action's return.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from rem.config import EnvConfig
from rem.envs.atari import action_meanings, make_env
from rem.utils.atomic import atomic_write_text


def episode_return(game: str, action: int | None, seed: int, max_steps: int) -> float:
    """One test episode: `action` every step, or uniform-random actions when None."""
    cfg = EnvConfig(test_max_raw_frames=max_steps * EnvConfig().frame_skip)
    env = make_env(game, train=False, seed=seed, cfg=cfg)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        a = int(rng.integers(env.action_space.n)) if action is None else action
        _, reward, terminated, truncated, _ = env.step(a)
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def probe(game: str, episodes: int, max_steps: int) -> dict:
    def stats(action: int | None) -> dict:
        returns = [episode_return(game, action, 1000 + i, max_steps) for i in range(episodes)]
        sd = float(np.std(returns, ddof=1)) if episodes > 1 else 0.0
        return {"mean": float(np.mean(returns)), "sem": sd / math.sqrt(episodes), "sd": sd}

    random = stats(None)
    constant = {name: stats(a) for a, name in enumerate(action_meanings(game))}
    best_name, best = max(constant.items(), key=lambda kv: kv[1]["mean"])
    # Gap of the best constant action over random in units of the random policy's spread
    # (infinite when every random episode scored the same and a fixed action did better).
    diff = best["mean"] - random["mean"]
    gap = diff / random["sd"] if random["sd"] > 0 else (math.inf if diff > 0 else 0.0)
    return {"random": random, "constant": constant, "best_action": best_name, "gap_sd": gap}


def run(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", required=True)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=2500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = {}
    for game in args.games:
        r = probe(game, args.episodes, args.max_steps)
        report[game] = r
        best = r["constant"][r["best_action"]]
        print(
            f"{game:14s} random {r['random']['mean']:9.1f} +- {r['random']['sd']:7.1f} (sd)   "
            f"best constant {r['best_action']:>14s} {best['mean']:9.1f}   gap {r['gap_sd']:+.1f} sd",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    run(argv, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
