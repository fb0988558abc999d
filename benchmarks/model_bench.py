"""Model hot paths: tokenizer, world model (POP / no-POP), imagination, actor-critic.

Every training step is the trainer's own, `rem.training.step.optimizer_step`: zero grads, loss
under the run's autocast (metrics kept on the device), backward, `clip_grad_norm_`, AdamW
step, no host read (the trainer reads a phase's metrics once at its end; on a GPU the
harness synchronises before stopping the clock). Batches are synthetic
(uniform random frames, actions, all steps real) with the shapes of docs/protocol.md#segment-sampling, moved with
`rem.data.sampler.batch_to_device`; the cost of a step does not depend on frame content.

Sizes (see `benchmarks.cli`): paper = the paper's models and batches (tokenizer 128 frames,
WM 64 x 10 blocks, imagination and AC 128 rollouts); reduced = the paper's models with the
batch divided by 8; tiny = the `quick` preset.

Perceptual loss: the real LPIPS-VGG16 weights are used when `rem weights check` finds them;
otherwise a randomly initialised full-size VGG16 + LPIPS lin layers of the same shapes (same
FLOPs and memory; the record says which). At tiny size a small VGG stand-in is used.

Per-epoch figures use the paper's schedule: 200 tokenizer steps, 200 WM steps and 100 AC
steps (each AC step = one imagination rollout of batch 128), compared with the paper's
per-epoch 39 s WM training + 20 s imagination (no-POP: 25.8 s and 92 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.harness import BenchResult, measure

# Paper's per-epoch seconds: WM training, imagination.
PAPER_EPOCH_S = {
    "pop": {"wm": 39.0, "imagination": 20.0},
    "nopop": {"wm": 25.8, "imagination": 92.0},
}
REDUCE = 8  # batch divisor of the "reduced" size
TINY_VGG = (8, 16, 32, 64, 64)


@dataclass
class Setup:
    cfg: Any
    agent: nn.Module
    optimizers: Any
    num_actions: int
    device: torch.device
    size: str
    perceptual: str  # what perceptual network the tokenizer has
    batch: dict[str, int]  # batch size per component at this size


def _perceptual(cfg, size: str) -> tuple[nn.Module, str]:
    from rem.models.lpips import LPIPS
    from rem.models.vgg import VGG16Features

    if size == "tiny":
        return LPIPS(VGG16Features(TINY_VGG)), f"tiny random-init VGG stand-in widths {TINY_VGG}"
    from rem.models.agent import build_perceptual
    from rem.weights import WeightsError, require_perceptual_weights, weights_dir

    try:
        require_perceptual_weights(weights_dir(cfg.tokenizer.weights_dir))
    except WeightsError:
        lpips = LPIPS(VGG16Features(), dropout_in_train=cfg.tokenizer.lpips_dropout_in_train)
        return (
            lpips,
            "random-init full-size VGG16 + LPIPS lin (pretrained weights absent; same shapes/FLOPs)",
        )
    return build_perceptual(cfg), "pretrained VGG16 + LPIPS v0.1 lin weights"


def build(args: Any, size: str, *, variant: str | None = None, perceptual: bool = True) -> Setup:
    from rem.config import load_config
    from rem.envs.atari import num_actions
    from rem.models.agent import build_agent
    from rem.models.optim import build_optimizers

    overrides = [f"tokenizer.perceptual_loss={'true' if perceptual else 'false'}"]
    cfg = load_config("quick" if size == "tiny" else "paper", variant, overrides)
    t = cfg.training
    div = REDUCE if size == "reduced" else 1
    batch = {
        "tokenizer": max(1, t.tokenizer.batch_size // div),
        "world_model": max(1, t.world_model.batch_size // div),
        "actor_critic": max(1, t.actor_critic.batch_size // div),
    }
    n_act = num_actions(args.game)
    torch.manual_seed(0)
    net, what = (None, "none (perceptual_loss=false)")
    if perceptual:
        net, what = _perceptual(cfg, size)
    agent = build_agent(cfg, n_act, perceptual=net).to(args.device)
    return Setup(cfg, agent, build_optimizers(agent, cfg), n_act, args.device, size, what, batch)


def synthetic_batch(
    b: int, s: int, num_actions: int, device: torch.device, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A float batch as `batch_to_device` makes it: observations (b, s, 3, 64, 64) in [0, 1]."""
    from rem.data.sampler import batch_to_device

    g = torch.Generator().manual_seed(seed)
    raw = {
        "observations": torch.randint(0, 256, (b, s, 3, 64, 64), dtype=torch.uint8, generator=g),
        "actions": torch.randint(0, num_actions, (b, s), generator=g),
        "rewards": torch.randint(-1, 2, (b, s), generator=g).float(),
        "ends": torch.zeros(b, s, dtype=torch.long),
        "mask_padding": torch.ones(b, s, dtype=torch.bool),
    }
    return batch_to_device(raw, device)


def autocast(args: Any) -> contextlib.AbstractContextManager:
    enabled = bool(getattr(args, "bf16", False)) and args.device.type == "cuda"
    return torch.autocast(device_type=args.device.type, dtype=torch.bfloat16, enabled=enabled)


def train_step(
    args: Any,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], tuple[torch.Tensor, dict]],
    max_grad_norm: float,
) -> Callable[[], None]:
    """One optimiser step as the trainer does it (see the module docstring)."""
    from rem.training.step import optimizer_step

    params = [p for group in optimizer.param_groups for p in group["params"]]

    def step() -> None:
        optimizer_step(loss_fn, optimizer, params, max_grad_norm, autocast(args))

    return step


def setup_config(s: Setup, **extra: Any) -> dict[str, Any]:
    wm, tok = s.cfg.world_model, s.cfg.tokenizer
    return {
        "wm": f"L{wm.num_layers} H{wm.num_heads} E{wm.embed_dim} F{wm.ffn_dim} blocks{wm.max_blocks}/chunk{wm.blocks_per_chunk}",
        "tokens_per_frame": tok.tokens_per_frame,
        "vocab": tok.vocab_size,
        "num_actions": s.num_actions,
        "perceptual": s.perceptual,
        **extra,
    }


def _result(args, s: Setup, suite: str, name: str, unit: str, times, mem, **config) -> BenchResult:
    r = BenchResult(suite, name, s.size, str(args.device), unit, times, memory=mem)
    r.config = setup_config(s, bf16=bool(getattr(args, "bf16", False)), **config)
    return r


def count_work(fn: Callable[[], None]) -> dict[str, float]:
    """Run `fn` once counting aten ops (~ kernel launches on a GPU) and matmul/conv FLOPs.

    Both are device independent: the op count bounds a launch-bound GPU run from below
    (ops x launch latency), the FLOPs a compute-bound one (FLOPs / peak).
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class OpCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    counter = OpCounter()
    flops = FlopCounterMode(display=False)
    with flops, counter:
        fn()
    return {"aten_ops": counter.ops, "gflop": round(flops.get_total_flops() / 1e9, 3)}


def _counts(args, r: BenchResult, fn: Callable[[], None]) -> None:
    if not getattr(args, "no_counts", False):
        r.derived.update(count_work(fn))


def _measure(args, fn, warmup: int = 1) -> tuple[list[float], dict[str, Any]]:
    return measure(
        fn, device=args.device, warmup=warmup, repeats=args.repeats, budget_s=args.budget
    )


# ----------------------------------------------------------------------------- step builders


def tokenizer_step(s: Setup, args: Any) -> Callable[[], None]:
    a, t = s.agent, s.cfg.training.tokenizer
    a.train()
    batch = synthetic_batch(s.batch["tokenizer"], 1, s.num_actions, s.device)
    return train_step(
        args,
        s.optimizers.tokenizer,
        lambda: a.tokenizer.compute_loss(batch, metrics_as_tensors=True),
        t.max_grad_norm,
    )


def world_model_step(s: Setup, args: Any) -> Callable[[], None]:
    a, t = s.agent, s.cfg.training.world_model
    a.world_model.train()
    a.tokenizer.eval()
    batch = synthetic_batch(
        s.batch["world_model"], s.cfg.world_model.max_blocks, s.num_actions, s.device
    )
    return train_step(
        args,
        s.optimizers.world_model,
        lambda: a.world_model.compute_loss(batch, a.tokenizer, metrics_as_tensors=True),
        t.max_grad_norm,
    )


def actor_critic_step(s: Setup, args: Any) -> Callable[[], None]:
    a, t = s.agent, s.cfg.training.actor_critic
    a.eval()
    a.actor_critic.train()
    batch = synthetic_batch(
        s.batch["actor_critic"], s.cfg.actor_critic.burn_in + 1, s.num_actions, s.device
    )
    return train_step(
        args,
        s.optimizers.actor_critic,
        lambda: a.actor_critic.compute_loss(
            batch, a.tokenizer, a.world_model, metrics_as_tensors=True
        ),
        t.max_grad_norm,
    )


def imagination_rollout(s: Setup, args: Any) -> tuple[Callable[[], None], int]:
    """One rollout of H_eff steps for the AC batch from random context tokens."""
    from rem.models.imagination import ImaginationEnv

    a = s.agent
    a.eval()
    b, k = s.batch["actor_critic"], s.cfg.tokenizer.tokens_per_frame
    horizon = a.actor_critic.effective_horizon
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, s.cfg.tokenizer.vocab_size, (b, 2, k), generator=g).to(s.device)
    ctx_action = torch.randint(0, s.num_actions, (b,), generator=g).to(s.device)
    actions = torch.randint(0, s.num_actions, (horizon, b), generator=g).to(s.device)
    env = ImaginationEnv(a.tokenizer, a.world_model)

    def rollout() -> None:
        with torch.no_grad(), autocast(args):
            env.reset(ctx, ctx_action)
            for i in range(horizon):
                env.step(actions[i], predict_next=i < horizon - 1)

    return rollout, horizon


# ----------------------------------------------------------------------------- suites


def free_setup(s: Setup) -> None:
    del s.agent, s.optimizers
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def tokenizer(args: Any) -> list[BenchResult]:
    out = []
    for size in args.sizes:
        for perceptual in (False, True):
            s = build(args, size, perceptual=perceptual)
            step = tokenizer_step(s, args)
            times, mem = _measure(args, step)
            name = "train_step_lpips" if perceptual else "train_step_no_lpips"
            r = _result(
                args,
                s,
                "tokenizer",
                name,
                f"tokenizer training step, batch {s.batch['tokenizer']}",
                times,
                mem,
                batch=s.batch["tokenizer"],
            )
            _counts(args, r, step)
            steps = s.cfg.training.tokenizer.steps_per_epoch
            r.derived["per_epoch_s"] = round(r.median_s * steps, 2)
            r.derived["per_epoch_note"] = f"{steps} steps x median (at this size's batch)"
            out.append(r)
            free_setup(s)
    return out


def world_model(args: Any) -> list[BenchResult]:
    out = []
    for size in args.sizes:
        med = {}
        for variant, key in (("rem", "pop"), ("no-pop", "nopop")):
            s = build(args, size, variant=variant, perceptual=False)
            step = world_model_step(s, args)
            times, mem = _measure(args, step)
            b, t = s.batch["world_model"], s.cfg.world_model.max_blocks
            r = _result(
                args,
                s,
                "world_model",
                f"train_step_{key}",
                f"WM training step, batch {b} x {t} blocks",
                times,
                mem,
                batch=b,
                variant=variant,
            )
            _counts(args, r, step)
            steps = s.cfg.training.world_model.steps_per_epoch
            r.derived["per_epoch_s"] = round(r.median_s * steps, 2)
            r.derived["paper_per_epoch_s"] = PAPER_EPOCH_S[key]["wm"]
            med[key] = r.median_s
            out.append(r)
            free_setup(s)
        out[-1].derived["nopop_over_pop_step_time"] = round(med["nopop"] / med["pop"], 2)
    return out


def imagination(args: Any) -> list[BenchResult]:
    out = []
    for size in args.sizes:
        med: dict[str, float] = {}
        ops: dict[str, Any] = {}
        for variant, key in (("rem", "pop"), ("no-pop", "nopop")):
            s = build(args, size, variant=variant, perceptual=False)
            fn, horizon = imagination_rollout(s, args)
            times, mem = _measure(args, fn)
            b = s.batch["actor_critic"]
            r = _result(
                args,
                s,
                "imagination",
                f"rollout_{key}",
                f"imagination rollout, batch {b}, {horizon} steps",
                times,
                mem,
                batch=b,
                horizon=s.cfg.actor_critic.imagination_horizon,
                steps=horizon,
                variant=variant,
            )
            r.items_per_repeat, r.item_name = b * horizon, "imagined frames"
            _counts(args, r, fn)
            ops[key] = r.derived.get("aten_ops")
            steps = s.cfg.training.actor_critic.steps_per_epoch
            r.derived["per_epoch_s"] = round(r.median_s * steps, 2)
            r.derived["paper_per_epoch_s"] = PAPER_EPOCH_S[key]["imagination"]
            med[key] = r.median_s
            out.append(r)
            free_setup(s)
        ratio = med["nopop"] / med["pop"]
        out[-1].derived["nopop_over_pop"] = f"{ratio:.2f}x (target >= 4x; paper 92/20 = 4.6x)"
        if ops["pop"] and ops["nopop"]:
            # what the ratio tends to where every op costs a launch (GPU, small batches)
            out[-1].derived["nopop_over_pop_aten_ops"] = round(ops["nopop"] / ops["pop"], 2)
    return out


def actor_critic(args: Any) -> list[BenchResult]:
    out = []
    for size in args.sizes:
        s = build(args, size, perceptual=False)
        step = actor_critic_step(s, args)
        times, mem = _measure(args, step)
        b = s.batch["actor_critic"]
        r = _result(
            args,
            s,
            "actor_critic",
            "train_step",
            f"AC training step incl. burn-in + imagination, batch {b} x {s.cfg.actor_critic.burn_in + 1}",
            times,
            mem,
            batch=b,
        )
        _counts(args, r, step)
        steps = s.cfg.training.actor_critic.steps_per_epoch
        r.derived["per_epoch_s"] = round(r.median_s * steps, 2)
        out.append(r)
        free_setup(s)
    return out


def checks(args: Any) -> list[BenchResult]:
    """Sync recorder on one step of every hot path (tiny size: what matters is which calls),
    plus the static scan. Reported as zero-time results carrying the findings."""
    from benchmarks.checks import record_syncs, static_scan

    tiny = type(args)(**{**vars(args), "sizes": ["tiny"]})
    findings: dict[str, Any] = {}
    s = build(tiny, "tiny", perceptual=True)
    findings["tokenizer_train_step"] = record_syncs(tokenizer_step(s, tiny), args.device)
    findings["actor_critic_train_step"] = record_syncs(actor_critic_step(s, tiny), args.device)
    for variant, key in (("rem", "pop"), ("no-pop", "nopop")):
        s = build(tiny, "tiny", variant=variant, perceptual=False)
        findings[f"world_model_train_step_{key}"] = record_syncs(
            world_model_step(s, tiny), args.device
        )
        fn, _ = imagination_rollout(s, tiny)
        findings[f"imagination_rollout_{key}"] = record_syncs(fn, args.device)
    scan = static_scan()
    r = BenchResult(
        "checks", "syncs_and_loops", "tiny", str(args.device), "hygiene findings", [0.0]
    )
    r.derived["runtime_sync_calls_in_rem"] = {
        k: v["would_sync_on_cuda_in_rem"] for k, v in findings.items()
    }
    r.derived["runtime_sync_totals_in_rem"] = {k: v["total_in_rem"] for k, v in findings.items()}
    r.derived["cuda_sync_debug"] = {k: v["cuda_sync_debug_warnings"] for k, v in findings.items()}
    r.derived["static_sync_prone_calls"] = scan["sync_calls"]
    r.derived["static_suspect_loops"] = scan["suspect_loops"]
    r.derived["static_all_loops"] = scan["loops"]
    if scan["missing"]:
        r.notes.append(f"not scanned (missing): {', '.join(scan['missing'])}")
    return [r]
