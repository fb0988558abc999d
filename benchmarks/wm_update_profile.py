"""Where a world-model update's CPU time goes, at a preset's sizes.

On a CPU the number of world-model updates is the learning budget, so this splits one update
(the same operations as the trainer's `optimizer_step` on `compute_loss`) into its parts with
torch.profiler: encoding the frames with the tokenizer, the world model's forward (embedding,
retention, FFN), the heads and the loss, backward, and the optimiser step; it times the POP forward + backward at several chunk
sizes (blocks computed in parallel; the same function up to float rounding) and the whole
update at several intra-op thread counts. Synthetic batches of the preset's shape (the cost does not depend on frame content).

    python -m benchmarks.wm_update_profile --preset toy
    python -m benchmarks.wm_update_profile --preset small --threads 1 2 --json wm_profile.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from benchmarks.model_bench import synthetic_batch

PARTS = ("encode", "forward", "loss", "backward", "optimizer")


def build(preset: str, overrides: list[str], num_actions: int):
    from rem.config import load_config
    from rem.models.agent import build_agent
    from rem.models.optim import build_optimizers

    cfg = load_config(preset, None, ["tokenizer.perceptual_loss=false", *overrides])
    torch.manual_seed(0)
    agent = build_agent(cfg, num_actions, perceptual=None)
    agent.tokenizer.eval()
    agent.world_model.train()
    return cfg, agent, build_optimizers(agent, cfg).world_model


def update(agent, optimizer, batch, max_grad_norm: float) -> None:
    """One world-model update, split into labelled parts (same ops as optimizer_step)."""
    wm, tok = agent.world_model, agent.tokenizer
    params = [p for g in optimizer.param_groups for p in g["params"]]
    optimizer.zero_grad(set_to_none=True)
    ctx, k = wm.cfg.context_length, wm.tokens_per_frame
    with record_function("encode"):
        obs_tokens = wm.encode_observations(batch["observations"], tok)
    with record_function("forward"):
        tokens = wm.block_tokens(obs_tokens, batch["actions"])
        with record_function("forward.embed"):
            wm.embed(tokens, tok)
        outputs = wm(tokens, tok)[:, ctx:]
    with record_function("loss"):
        valid, target_reward, target_end = wm._reward_end_targets(batch)
        target_obs = obs_tokens[:, ctx:].masked_fill(~valid[..., None], -100)
        last = outputs[:, :, k]
        loss, _ = wm._total_loss(
            wm.head_obs(outputs[:, :, :k]),
            target_obs,
            wm.head_reward(last),
            target_reward,
            wm.head_end(last),
            target_end,
            True,
        )
    with record_function("backward"):
        loss.backward()
    with record_function("optimizer"):
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()


def profile_parts(agent, optimizer, batch, steps: int, max_grad_norm: float) -> dict[str, float]:
    """Mean milliseconds per update of each labelled part (profiler wall time)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            update(agent, optimizer, batch, max_grad_norm)
    ms: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key in PARTS or event.key == "forward.embed":
            ms[event.key] = event.cpu_time_total / 1e3 / steps
    return dict(ms)


def chunk_sizes(agent, batch, sizes: list[int], steps: int) -> dict[int, dict[str, float]]:
    """Forward + backward CPU-seconds per update at each POP chunk size (blocks computed in
    parallel), and the largest output difference from the configured size (the chunkwise
    form is exact in real arithmetic, so only float rounding may differ)."""
    wm, tok = agent.world_model, agent.tokenizer
    with torch.no_grad():
        tokens = wm.block_tokens(
            wm.encode_observations(batch["observations"], tok), batch["actions"]
        )
        wm.eval()
        reference = wm(tokens, tok)
        out = {}
        for size in sizes:
            out[size] = {"max_abs_diff": float((wm(tokens, tok, size) - reference).abs().max())}
        wm.train()
    for size in sizes:
        times = []
        for _ in range(steps):
            start = time.process_time()
            wm(tokens, tok, size).square().mean().backward()
            times.append(time.process_time() - start)
        out[size]["cpu_s"] = sorted(times)[len(times) // 2]
    return out


def time_update(agent, optimizer, batch, steps: int, threads: int, max_grad_norm: float) -> float:
    """Median seconds per update at `threads` intra-op threads."""
    torch.set_num_threads(threads)
    update(agent, optimizer, batch, max_grad_norm)  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        update(agent, optimizer, batch, max_grad_norm)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="toy")
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--chunks",
        type=int,
        nargs="+",
        default=[1, 2, 3, 6],
        help="POP chunk sizes (blocks per chunk) to time",
    )
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="config KEY=VALUE overrides")
    args = parser.parse_args(argv)
    cfg, agent, optimizer = build(args.preset, args.overrides, args.actions)
    t = cfg.training.world_model
    batch = synthetic_batch(
        t.batch_size, cfg.world_model.max_blocks, args.actions, torch.device("cpu")
    )
    torch.set_num_threads(1)
    parts = profile_parts(agent, optimizer, batch, args.steps, t.max_grad_norm)
    chunks = chunk_sizes(agent, batch, args.chunks, args.steps)
    timing = {
        n: time_update(agent, optimizer, batch, args.steps, n, t.max_grad_norm)
        for n in args.threads
    }
    total = sum(parts.get(p, 0.0) for p in PARTS)
    print(
        f"world-model update, preset {args.preset}, batch {t.batch_size} x {cfg.world_model.max_blocks} blocks "
        f"of {agent.world_model.tokens_per_block} tokens, torch {torch.__version__}"
    )
    print("part (1 thread)          ms/update   share")
    for p in (*PARTS[:2], "forward.embed", *PARTS[2:]):
        if p in parts:
            print(f"  {p:<22} {parts[p]:9.1f}   {parts[p] / total:6.1%}")
    print("POP chunk size (forward + backward, 1 thread)")
    for size, row in chunks.items():
        print(
            f"  {size} block(s) per chunk: {row['cpu_s'] * 1e3:7.1f} ms, "
            f"max output difference {row['max_abs_diff']:.1e}"
        )
    print("whole update by intra-op threads")
    for n, s in timing.items():
        print(f"  {n} thread(s): {s * 1e3:.1f} ms per update (median of {args.steps})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "preset": args.preset,
                    "parts_ms": parts,
                    "chunks": chunks,
                    "update_s_by_threads": timing,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
