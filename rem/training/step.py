"""One optimiser step of a component, and the per-phase reduction of its metrics.

A training step never reads the device from the host: losses return their metrics as 0-d
device tensors, the pre-clip grad norm stays a tensor, and `summarise_phase` reads everything
a phase produced in one transfer at its end. On a GPU this lets the host queue the next steps
while the device works (benchmarks/checks.py verifies it on every step kind).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
from torch import nn

Metrics = dict[str, torch.Tensor]


def optimizer_step(
    loss_fn: Callable[[], tuple[torch.Tensor, Metrics]],
    optimizer: torch.optim.Optimizer,
    params: Iterable[torch.Tensor],
    max_grad_norm: float,
    autocast: contextlib.AbstractContextManager | None = None,
) -> tuple[Metrics, torch.Tensor]:
    """zero_grad -> loss (under `autocast`) -> backward -> clip -> step.

    Returns the loss's metrics (0-d tensors) and the global grad norm *before* clipping (what
    the reference logs), both still on the device.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast or contextlib.nullcontext():
        loss, metrics = loss_fn()
    loss.backward()
    norm = nn.utils.clip_grad_norm_(list(params), max_grad_norm)
    optimizer.step()
    return metrics, norm.detach()


def summarise_phase(
    rows: list[Metrics], prefix: str, grad_norms: list[torch.Tensor] | None = None
) -> dict[str, float]:
    """Mean of every metric over a phase's steps (+ grad-norm mean/max/min): one host read.

    rows: per step {name: 0-d tensor}; grad_norms: per step 0-d tensor.
    """
    if not rows:
        return {}
    names = list(rows[0])
    stats = [torch.stack([row[name].float() for row in rows]).mean() for name in names]
    keys = [f"{prefix}/{name}" for name in names]
    if grad_norms:
        norms = torch.stack(grad_norms).float()
        stats += [norms.mean(), norms.max(), norms.min()]
        keys += [f"{prefix}/grad_norm_{s}" for s in ("mean", "max", "min")]
    return dict(zip(keys, torch.stack(stats).tolist()))
