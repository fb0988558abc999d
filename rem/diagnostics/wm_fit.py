"""How fast can a fresh world model learn a run's frames when the tokenizer stands still?

Separates the world model's own learning speed from the tokenizer's drift
(`rem diagnose tokenizer-drift`): a run's checkpointed tokenizer, frozen, encodes every frame
of the run's replay once; a freshly initialised world model of the run's config then trains on
segments of the first 80% of each episode (next-frame token cross-entropy, AdamW with the
world model's weight decay) and is scored on segments of the last 20%: next-frame token
accuracy against repeating the previous frame's tokens.

    rem diagnose wm-fit runs/learning/rem/Boxing/1 --updates 1000 --lr 3e-4
    rem diagnose wm-fit RUN_DIR --copy-task 0.1    # synthetic: can it learn to copy?
    rem diagnose wm-fit RUN_DIR --copy-task 0.1 world_model.num_heads=1   # another shape

`--copy-task P` replaces the frames' tokens with a pure copy task of the same shape: random
first frames over the codes the tokenizer uses on these frames (so every code has a trained
codebook vector, as on real data), then each token kept from the previous frame with
probability 1 - P, else redrawn. A model that has learned to copy scores about 1 - P + P/n
for n codes.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from rem.config import Config, ConfigError, config_from_dict, parse_override
from rem.data.replay import Replay, ReplayError
from rem.diagnostics import one_line_errors
from rem.models.agent import build_agent
from rem.models.iris.world_model import IrisWorldModel
from rem.training.checkpoint import REPLAY, STATE, CheckpointError, load_state_file
from rem.training.restore import latest_checkpoint, read_run
from rem.training.run_dir import RunDirError


def encode_episodes(tokenizer, episodes) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Episodes (anything with uint8 `observations` (t, 3, 64, 64) and `actions` (t,)) ->
    per episode tokens long (t, K) and actions long (t,)."""
    tokens, actions = [], []
    with torch.no_grad():
        for ep in episodes:
            frames = torch.from_numpy(np.asarray(ep.observations)).float() / 255.0
            tokens.append(
                torch.cat([tokenizer.encode(x).tokens.flatten(1) for x in frames.split(256)])
            )
            actions.append(torch.from_numpy(np.asarray(ep.actions)).long())
    return tokens, actions


def copy_task(tokens: list[torch.Tensor], change: float, seed: int) -> list[torch.Tensor]:
    """Same shapes, tokens (t, K) over the codes used in `tokens`: frame i+1 keeps frame i's
    token with probability 1 - change, else draws a used code."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.cat(tokens).unique()
    out = []
    for t in tokens:
        x = codes[torch.randint(0, len(codes), t.shape, generator=g)]
        for i in range(1, len(x)):
            keep = torch.rand(x[i].shape, generator=g) >= change
            x[i] = torch.where(keep, x[i - 1], x[i])
        out.append(x)
    return out


def split_segments(lengths: list[int], span: int) -> tuple[list, list]:
    """(episode, start) of every training segment (first 80%) and held-out one (last 20%)."""
    train, test = [], []
    for i, n in enumerate(lengths):
        cut = int(n * 0.8)
        train += [(i, s) for s in range(0, cut - span)]
        test += [(i, s) for s in range(cut, n - span, 3)]
    return train, test


def next_frame_logits(wm, tokenizer, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """tokens (b, t, K), actions (b, t) -> logits (b, t - ctx, K, V) for frames ctx..t-1.

    REM's POP world model predicts a frame's K tokens together from the frames before it;
    IRIS's GPT predicts each token from the whole stream before it, the same frame's earlier
    (true) tokens included, as it is trained."""
    ctx, k = wm.cfg.context_length, wm.tokens_per_frame
    if isinstance(wm, IrisWorldModel):
        obs = wm.logits(wm.block_tokens(tokens, actions))[0]  # tokens 1..t*K-1 of the segment
        return rearrange(obs[:, k - 1 :], "b (t k) v -> b t k v", k=k)[:, ctx - 1 :]
    outputs = wm(wm.block_tokens(tokens, actions), tokenizer)[:, ctx:]
    return wm.head_obs(outputs[:, :, :k])


def held_out_accuracy(wm, tokenizer, batches) -> tuple[float, float]:
    """-> (model accuracy, repeat-previous accuracy) over the held-out batches."""
    ctx, hit, repeat, n = wm.cfg.context_length, 0, 0, 0
    wm.eval()
    with torch.no_grad():
        for tokens, actions in batches:
            target = tokens[:, ctx:]
            hit += (next_frame_logits(wm, tokenizer, tokens, actions).argmax(-1) == target).sum()
            repeat += (tokens[:, ctx - 1 : -1] == target).sum()
            n += target.numel()
    wm.train()
    return float(hit) / n, float(repeat) / n


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """The run's config with `world_model.KEY=VALUE` changes (the tokenizer stays the run's)."""
    data = dataclasses.asdict(cfg)
    for text in overrides:
        change = parse_override(text)
        if set(change) != {"world_model"}:
            raise ConfigError(f"{text}: only world_model.KEY=VALUE changes apply here")
        data["world_model"].update(change["world_model"])
    return config_from_dict(data, source="wm_fit overrides")


def parse(argv: list[str] | None, prog: str | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "overrides", nargs="*", help="world_model.KEY=VALUE, e.g. world_model.num_heads=1"
    )
    p.add_argument("--updates", type=int, default=1000)
    p.add_argument("--every", type=int, default=100, help="score every N updates")
    p.add_argument("--lr", type=float, help="default: the run's world-model lr")
    p.add_argument("--batch-size", type=int, help="default: the run's")
    p.add_argument("--copy-task", type=float, metavar="P", help="synthetic copy task, P changed")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def frozen_run(args: argparse.Namespace):
    """The run's config (with the overrides), its latest state, its frozen tokenizer, a fresh
    world model, and the replay's tokens and actions per episode."""
    info = read_run(args.run_dir)
    latest = latest_checkpoint(args.run_dir)
    if latest is None:
        raise FileNotFoundError(
            f"{args.run_dir} has no committed checkpoint yet: wait for the first one"
        )
    state = load_state_file(latest / STATE)
    cfg = with_overrides(info.cfg, args.overrides)
    agent = build_agent(cfg, len(info.meanings), load_perceptual_weights=False)
    prefix = "tokenizer."
    agent.tokenizer.load_state_dict(
        {k[len(prefix) :]: v for k, v in state["agent"].items() if k.startswith(prefix)}
    )
    tokenizer, wm = agent.tokenizer.eval(), agent.world_model.train()  # wm: fresh weights
    tokens, actions = encode_episodes(tokenizer, Replay.load(latest / REPLAY).episodes())
    if args.copy_task is not None:
        tokens = copy_task(tokens, args.copy_task, args.seed)
    return info, cfg, state, tokenizer, wm, tokens, actions


def run(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = parse(argv, prog)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    info, cfg, state, tokenizer, wm, tokens, actions = frozen_run(args)
    span = cfg.world_model.max_blocks
    train, test = split_segments([len(t) for t in tokens], span)

    def stack(segments):
        return (
            torch.stack([tokens[i][s : s + span] for i, s in segments]),
            torch.stack([actions[i][s : s + span] for i, s in segments]),
        )

    held_out = [stack(test[j : j + 32]) for j in range(0, min(len(test), 256), 32)]
    wcfg = info.cfg.training.world_model
    batch_size = args.batch_size or wcfg.batch_size
    opt = torch.optim.AdamW(wm.parameters(), lr=args.lr or wcfg.lr, weight_decay=0.05)
    rng = np.random.default_rng(args.seed)
    print(
        f"{args.run_dir}: tokenizer of epoch {state['epoch']}, {sum(map(len, tokens))} frames, "
        f"{len(train)} training / {len(test)} held-out segments of {span} frames, "
        f"lr {args.lr or wcfg.lr}, batch {batch_size}"
        + (f", copy task {args.copy_task}" if args.copy_task is not None else "")
        + "".join(f", {o}" for o in args.overrides)
    )
    start, ctx = time.perf_counter(), cfg.world_model.context_length
    for update in range(1, args.updates + 1):
        batch_tokens, batch_actions = stack(
            [train[i] for i in rng.integers(len(train), size=batch_size)]
        )
        logits = next_frame_logits(wm, tokenizer, batch_tokens, batch_actions)
        loss = F.cross_entropy(logits.flatten(0, -2), batch_tokens[:, ctx:].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), 10.0)
        opt.step()
        if update % args.every == 0 or update == args.updates:
            acc, repeat = held_out_accuracy(wm, tokenizer, held_out)
            print(
                f"update {update}: train loss {loss.item():.3f}, held-out token accuracy "
                f"{acc:.3f} (repeat previous {repeat:.3f}), {time.perf_counter() - start:.0f} s",
                flush=True,
            )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    expected = (ConfigError, RunDirError, CheckpointError, ReplayError, FileNotFoundError)
    return one_line_errors(run, argv, prog or "wm_fit", expected)


if __name__ == "__main__":
    raise SystemExit(main())
