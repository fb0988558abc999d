"""A map of world-model learning speed on real frames: what does it need to beat copying?

For each game, one set of frames (uniform-random play under the train-env protocol) and, per
token grid and code width, one tokenizer trained on them and then frozen. Every world-model
configuration of the grid then trains from scratch on the same tokens (next-frame token
cross-entropy, AdamW; segments of the first 80% of each episode) and is scored on held-out
segments (the last 20%): next-frame token accuracy against repeating the previous frame's
tokens, as a function of updates and of CPU-seconds. A configuration "beats repeat" at the
first scoring point where its accuracy exceeds the repeat baseline.

    rem diagnose wm-map --games Boxing KungFuMaster --out results/learning/wm_map
    rem diagnose wm-map --games Catch --configs base tokens8x8 --max-updates 500 --out /tmp/m

The grid varies one factor at a time around `base` (REM-small's world model with 4x4 tokens:
2 layers, 2 heads, width 64, lr 1e-3): 8x8 tokens (the paper's), widths 128 and 256, 4 heads,
5 layers, lr 3e-4 and 3e-3; and IRIS's GPT world model (learned absolute positions, softmax
attention, its own embedding tables) of base's shape on the same frozen tokens, with 4x4 and
8x8 tokens (`iris`, `iris_tokens8x8`). Its teacher-forced accuracy sees the frame's earlier
true tokens, as IRIS trains and imagines token by token. REM's world model embeds
observation tokens with the tokenizer's codes (shared embeddings, as in the paper), so its
width is the tokenizer's code width: one tokenizer is trained per (token grid, width) and
reused by every configuration that needs it.
Frames, tokenizers and results are cached in `--out`, so a rerun adds only what is missing.
Writes `wm_map.csv` (every scoring point), `wm_map.md` (updates and CPU-minutes to beat
repeat per configuration, and the codes the frozen tokenizer uses on the frames: a tokenizer
that collapsed to one code makes "repeat" and the model both perfect and the point void) and
`wm_map.png`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rem.config import Config, ConfigError, load_config
from rem.diagnostics import one_line_errors
from rem.diagnostics.wm_fit import (
    encode_episodes,
    held_out_accuracy,
    next_frame_logits,
    split_segments,
)
from rem.envs.atari import make_env, num_actions
from rem.games import UnknownGameError, check_game
from rem.models.agent import build_agent
from rem.models.iris.config import IrisWorldModelConfig
from rem.models.iris.world_model import IrisWorldModel
from rem.utils.atomic import atomic_write_text


class Played(NamedTuple):
    """One random-play episode: observations uint8 (t, 3, 64, 64), actions int64 (t,)."""

    observations: np.ndarray
    actions: np.ndarray


@dataclass(frozen=True)
class WMConfig:
    """One point of the map: a world-model shape, a token grid and a learning rate."""

    name: str
    grid: int = 4  # tokens per side: 4 (4x4, the paper's ablation) or 8 (8x8, the paper's)
    width: int = 64
    heads: int = 2
    layers: int = 2
    lr: float = 1e-3
    agent: str = "rem"  # "iris": IRIS's GPT world model on the same frozen tokens

    def overrides(self) -> list[str]:
        steps = {4: 4, 8: 3}[self.grid]
        return [
            f"tokenizer.num_downsample_steps={steps}",
            f"tokenizer.embed_dim={self.width}",
            f"world_model.embed_dim={self.width}",
            f"world_model.ffn_dim={2 * self.width}",
            f"world_model.num_heads={self.heads}",
            f"world_model.num_layers={self.layers}",
        ]


GRID = (
    WMConfig("base"),
    WMConfig("tokens8x8", grid=8),
    WMConfig("width128", width=128),
    WMConfig("width256", width=256),
    WMConfig("heads4", heads=4),
    WMConfig("layers5", layers=5),
    WMConfig("lr3e-4", lr=3e-4),
    WMConfig("lr3e-3", lr=3e-3),
    WMConfig("iris", agent="iris"),
    WMConfig("iris_tokens8x8", grid=8, agent="iris"),
)
# the tokenizer and world-model settings every point shares (REM-small's, no perceptual loss)
BASE_OVERRIDES = [
    "tokenizer.vocab_size=128",
    "tokenizer.base_channels=8",
    "tokenizer.z_channels=32",
    "tokenizer.perceptual_loss=false",
    "world_model.max_blocks=6",
    "world_model.blocks_per_chunk=2",
]


# ------------------------------------------------------------------ frames and tokenizers


def collect_frames(game: str, steps: int, seed: int) -> list[Played]:
    """Uniform-random play for `steps` agent steps under the train-env protocol."""
    env = make_env(game, train=True, seed=seed)
    rng = np.random.default_rng(seed)
    n_actions = num_actions(game)
    episodes, frames, actions = [], [], []
    obs, _ = env.reset()
    for _ in range(steps):
        action = int(rng.integers(n_actions))
        frames.append(obs.transpose(2, 0, 1))
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            episodes.append(Played(np.stack(frames), np.array(actions)))
            frames, actions = [], []
            obs, _ = env.reset()
    if frames:
        episodes.append(Played(np.stack(frames), np.array(actions)))
    env.close()
    return episodes


def cached_frames(out: Path, game: str, steps: int, seed: int) -> list[Played]:
    path = out / f"frames_{game}_{steps}_{seed}.npz"
    if path.exists():
        with np.load(path) as data:
            n = int(data["episodes"])
            return [Played(data[f"obs_{i}"], data[f"act_{i}"]) for i in range(n)]
    episodes = collect_frames(game, steps, seed)
    arrays = {"episodes": np.array(len(episodes))}
    for i, ep in enumerate(episodes):
        arrays[f"obs_{i}"], arrays[f"act_{i}"] = ep.observations, ep.actions
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return episodes


def train_tokenizer(tokenizer, frames: torch.Tensor, updates: int, seed: int) -> float:
    """Train on uniformly drawn frames (b=16) with the trainer's loss; returns the last loss.

    frames uint8 (n, 3, 64, 64)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(tokenizer.parameters(), lr=1e-3)
    tokenizer.train()
    loss = torch.tensor(float("nan"))
    for _ in range(updates):
        pick = torch.randint(0, len(frames), (16,), generator=g)
        loss, _ = tokenizer.compute_loss({"observations": frames[pick].float() / 255.0})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def frozen_tokenizer(cfg: Config, game: str, point: WMConfig, frames, args) -> torch.nn.Module:
    """The (grid, width) tokenizer of `game`, trained once and cached in `--out`."""
    agent = build_agent(cfg, num_actions(game), load_perceptual_weights=False)
    tokenizer = agent.tokenizer
    path = args.out / f"tokenizer_{game}_{point.grid}x{point.grid}_w{point.width}.pt"
    if path.exists():
        tokenizer.load_state_dict(torch.load(path, weights_only=True))
    else:
        torch.manual_seed(args.seed)
        start = time.process_time()
        loss = train_tokenizer(tokenizer, frames, args.tokenizer_updates, args.seed)
        print(
            f"  tokenizer {path.name}: {args.tokenizer_updates} updates, loss {loss:.4f}, "
            f"{time.process_time() - start:.0f} CPU-s",
            flush=True,
        )
        tmp = path.with_suffix(".tmp")
        torch.save(tokenizer.state_dict(), tmp)
        tmp.replace(path)
    return tokenizer.eval()


# ------------------------------------------------------------------ one point of the map


def world_model(cfg: Config, point: WMConfig, n_actions: int) -> torch.nn.Module:
    """A fresh world model of the point: REM's (POP, `cfg`'s) or IRIS's GPT of the same depth,
    heads, width, span and context, with its own embedding tables and IRIS's dropout."""
    if point.agent == "iris":
        wm = cfg.world_model
        shape = IrisWorldModelConfig(
            num_layers=wm.num_layers,
            num_heads=wm.num_heads,
            embed_dim=wm.embed_dim,
            max_blocks=wm.max_blocks,
            context_length=wm.context_length,
        )
        return IrisWorldModel(shape, cfg.tokenizer, n_actions)
    return build_agent(cfg, n_actions, load_perceptual_weights=False).world_model


def fit(cfg: Config, tokenizer, tokens, actions, point: WMConfig, args) -> list[dict]:
    """Train a fresh world model of `cfg` on frozen tokens; score every `--every` updates.

    Stops at `--max-updates` or `--max-cpu-s` CPU-seconds of training, whichever comes first.
    Returns one row per scoring point."""
    torch.manual_seed(args.seed)
    wm = world_model(cfg, point, args.n_actions).train()
    span, ctx = cfg.world_model.max_blocks, cfg.world_model.context_length
    train, test = split_segments([len(t) for t in tokens], span)

    def stack(segments):
        return (
            torch.stack([tokens[i][s : s + span] for i, s in segments]),
            torch.stack([actions[i][s : s + span] for i, s in segments]),
        )

    held_out = [stack(test[j : j + 32]) for j in range(0, min(len(test), 256), 32)]
    opt = torch.optim.AdamW(wm.parameters(), lr=point.lr, weight_decay=0.05)
    rng = np.random.default_rng(args.seed)
    rows, cpu = [], 0.0
    for update in range(1, args.max_updates + 1):
        start = time.process_time()
        batch_tokens, batch_actions = stack([train[i] for i in rng.integers(len(train), size=16)])
        logits = next_frame_logits(wm, tokenizer, batch_tokens, batch_actions)
        loss = F.cross_entropy(logits.flatten(0, -2), batch_tokens[:, ctx:].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), 10.0)
        opt.step()
        cpu += time.process_time() - start
        last = update == args.max_updates or cpu >= args.max_cpu_s
        if update % args.every == 0 or last:
            accuracy, repeat = held_out_accuracy(wm, tokenizer, held_out)
            rows.append(
                {"updates": update, "cpu_s": round(cpu, 2), "train_loss": round(float(loss), 4)}
                | {"accuracy": round(accuracy, 4), "repeat": round(repeat, 4)}
            )
            print(f"    {point.name} update {update}: {accuracy:.3f} vs repeat {repeat:.3f}, "
                  f"{cpu:.0f} CPU-s", flush=True)  # fmt: skip
        if last:
            break
    return rows


# ------------------------------------------------------------------ the map


def run_game(game: str, points: list[WMConfig], args) -> list[dict]:
    """Every point of the map on one game's frames (cached per point in `--out`)."""
    episodes = cached_frames(args.out, game, args.frames, args.seed)
    frames = torch.from_numpy(np.concatenate([ep.observations for ep in episodes]))
    args.n_actions = num_actions(game)
    print(f"{game}: {len(frames)} frames in {len(episodes)} episodes", flush=True)
    rows = []
    for point in points:
        path = args.out / f"fit_{game}_{point.name}.json"
        if args.cached_only and not path.exists():
            print(f"  {point.name}: not in the cache, left out", flush=True)
            continue
        if path.exists():  # a cached point with a larger budget is cut at this one's
            result = read_cached_fit(path)
            result["rows"] = [r for r in result["rows"] if within_budget(r, args)]
        else:
            cfg = load_config(args.preset, None, BASE_OVERRIDES + point.overrides())
            tokenizer = frozen_tokenizer(cfg, game, point, frames, args)
            tokens, actions = encode_episodes(tokenizer, episodes)
            result = {
                "codes_used": int(torch.cat(tokens).unique().numel()),
                "config": dataclasses.asdict(point),
                "budget": {"max_updates": args.max_updates, "max_cpu_s": args.max_cpu_s},
                "rows": fit(cfg, tokenizer, tokens, actions, point, args),
            }
            atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        result["config"].setdefault("agent", "rem")  # a point cached before IRIS's was added
        if "codes_used" not in result and not args.cached_only:  # cached before it was kept
            cfg = load_config(args.preset, None, BASE_OVERRIDES + point.overrides())
            tokens, _ = encode_episodes(frozen_tokenizer(cfg, game, point, frames, args), episodes)
            result["codes_used"] = int(torch.cat(tokens).unique().numel())
            cached = json.loads(path.read_text()) | {"codes_used": result["codes_used"]}
            atomic_write_text(path, json.dumps(cached, indent=1) + "\n")  # kept for next time
        codes = {"codes_used": result.get("codes_used")}
        rows += [{"game": game, **result["config"], **codes, **row} for row in result["rows"]]
    return rows


class CacheError(ValueError):
    """A cached fit in `--out` that cannot be read."""


def read_cached_fit(path: Path) -> dict:
    try:
        result = json.loads(path.read_text())
        result["rows"], result["config"]  # noqa: B018 - both must be there
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CacheError(
            f"{path} is not a readable fit ({type(err).__name__}: {err}); delete it and "
            "rerun to fit that point again"
        ) from None
    return result


def within_budget(row: dict, args) -> bool:
    return row["updates"] <= args.max_updates and row["cpu_s"] <= args.max_cpu_s * 1.02


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (game, configuration): updates and CPU-minutes at which accuracy first beats repeat,
    and the final accuracy against repeat."""
    out = []
    for (game, name), rows in table.groupby(["game", "name"], sort=False):
        beat = rows[rows["accuracy"] > rows["repeat"]]
        last = rows.iloc[-1]
        out.append(
            {
                "game": game,
                "configuration": name,
                "updates to beat repeat": int(beat["updates"].iloc[0])
                if len(beat)
                else f"not within {int(last['updates'])}",
                "CPU-min to beat repeat": round(beat["cpu_s"].iloc[0] / 60, 1)
                if len(beat)
                else f"not within {last['cpu_s'] / 60:.1f}",
                "final accuracy": last["accuracy"],
                "repeat": last["repeat"],
                "CPU-s per update": round(last["cpu_s"] / last["updates"], 3),
                "codes in use": "n/a" if pd.isna(last["codes_used"]) else int(last["codes_used"]),
            }
        )
    return pd.DataFrame(out)


def figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(dict.fromkeys(table["game"]))
    # one colour per configuration in every panel, one legend for all of them
    colors = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(table["name"]))}
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4), squeeze=False)
    for ax, game in zip(axes[0], games):
        rows = table[table["game"] == game]
        for name, curve in rows.groupby("name", sort=False):
            gap = curve["accuracy"] - curve["repeat"]
            ax.plot(curve["cpu_s"] / 60, gap, color=colors[name], label=name)
        ax.axhline(0.0, color="black", lw=0.8, ls="--")
        ax.set(title=game, xlabel="CPU-minutes of world-model training",
               ylabel="held-out accuracy − repeat previous frame")  # fmt: skip
    handles = [plt.Line2D([], [], color=c, label=n) for n, c in colors.items()]
    fig.legend(handles=handles, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def run(argv: list[str] | None = None, prog: str | None = None) -> None:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--games", nargs="+", default=["Boxing", "KungFuMaster"])
    p.add_argument("--configs", nargs="+", choices=[c.name for c in GRID], help="default: all")
    p.add_argument("--out", type=Path, required=True, help="folder for the cache and the map")
    p.add_argument("--frames", type=int, default=4000, help="random-play agent steps per game")
    p.add_argument("--tokenizer-updates", type=int, default=800)
    p.add_argument("--max-updates", type=int, default=4000)
    p.add_argument("--max-cpu-s", type=float, default=300.0, help="per configuration")
    p.add_argument("--every", type=int, default=250, help="score every N updates")
    p.add_argument("--cached-only", action="store_true",
                   help="build the map from the points cached in --out, training nothing")  # fmt: skip
    p.add_argument("--preset", default="toy", help="the rest of the config (only its schedule-"
                   "independent world-model keys matter: context, dropout)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    points = [c for c in GRID if args.configs is None or c.name in args.configs]
    games = [check_game(game) for game in args.games]  # every name before any work
    rows = []
    for game in games:
        rows += run_game(game, points, args)
    table = pd.DataFrame(rows)
    atomic_write_text(args.out / "wm_map.csv", table.to_csv(index=False))
    result = summary(table)
    text = (
        "# World-model learning speed on frozen tokens\n\n"
        f"`{prog or 'rem diagnose wm-map'} {' '.join(argv or [])}`\n\n"
        + result.to_markdown(index=False)
        + "\n"
    )
    atomic_write_text(args.out / "wm_map.md", text)
    figure(table, args.out / "wm_map.png")
    print(text)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return one_line_errors(run, argv, prog or "wm_map", (UnknownGameError, ConfigError, CacheError))


if __name__ == "__main__":
    raise SystemExit(main())
