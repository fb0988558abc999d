"""The trainer's component table: the tokenizer, the world model and the actor-critic, each
with where its batches come from, its loss, its schedule and how it is evaluated. Setup,
training and evaluation read this one table (docs/protocol.md#segment-sampling).

| component | segment length | context | padding | loss | evaluation batches |
|---|---|---|---|---|---|
| tokenizer | 1 | 0 | right | VQ + MSE + LPIPS | every test frame once |
| world_model | world_model.max_blocks | the agent's | right | tokens, reward, end | about a tenth of the test sequences |
| actor_critic | actor_critic.burn_in + 1 | the agent's | left | imagination | one rollout (the trainer's inspection) |

The agent's registry entry (rem.config.AGENTS) sets the rest: the context of the world-model
and actor-critic segments (REM: world_model.context_length; IRIS: 0, a segment needs one
real step) and how pairs are drawn (REM: uniform over (episode, start) pairs; IRIS: an
episode uniformly, then a start; rem.data.sampler).

The schedule (start epoch, steps per epoch, batch size, learning rate, clipping, decay) is
`cfg.training.<name>`. Losses return their metrics as device tensors (read once per phase,
rem.training.step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rem.config import ComponentTrainingConfig, Config
from rem.data.replay import Replay
from rem.data.sampler import SAMPLERS, Batch, SegmentSampler
from rem.models.agent import Agent
from rem.training.step import Metrics

Loss = Callable[[Agent, Batch], tuple[torch.Tensor, Metrics]]


@dataclass(frozen=True)
class ComponentSpec:
    name: str  # the agent's attribute, and the key in the optimisers and `cfg.training`
    segment_length: Callable[[Config], int]
    context: Callable[[Config], int]
    padding: str  # "right" or "left" (rem.data.sampler)
    loss: Loss
    eval_batches: Callable[[int, int], int] | None  # (samples, batch size) -> batches; None:
    # no loss evaluation (the actor-critic is inspected through an imagination rollout)

    def schedule(self, cfg: Config) -> ComponentTrainingConfig:
        return getattr(cfg.training, self.name)

    def started(self, cfg: Config, epoch: int) -> bool:
        """Whether `epoch` is past the component's start (it is evaluated from then on)."""
        return epoch > self.schedule(cfg).start_after_epochs

    def active(self, cfg: Config, epoch: int) -> bool:
        """Whether the component trains at `epoch`."""
        return self.started(cfg, epoch) and self.schedule(cfg).steps_per_epoch > 0

    def sampler(
        self, cfg: Config, replay: Replay, rng: np.random.Generator, *, pin_memory: bool = False
    ) -> SegmentSampler:
        """This component's batches from `replay`: (batch, segment length, context, padding),
        drawn the agent's way (its sampler mode)."""
        return SAMPLERS[cfg.spec.sampler](
            replay,
            batch_size=self.schedule(cfg).batch_size,
            segment_length=self.segment_length(cfg),
            context=self.context(cfg),
            padding=self.padding,  # type: ignore[arg-type]
            rng=rng,
            pin_memory=pin_memory,
        )


def _context(cfg: Config) -> int:
    """Real steps beyond the first that a world-model or actor-critic segment holds."""
    own = cfg.spec.component_context
    return cfg.world_model.context_length if own is None else own


COMPONENTS = (
    ComponentSpec(
        "tokenizer",
        segment_length=lambda cfg: 1,
        context=lambda cfg: 0,
        padding="right",
        loss=lambda agent, batch: agent.tokenizer.compute_loss(batch, metrics_as_tensors=True),
        eval_batches=lambda samples, batch: math.ceil(samples / batch),  # the last one wraps
    ),
    ComponentSpec(
        "world_model",
        segment_length=lambda cfg: cfg.world_model.max_blocks,
        context=_context,
        padding="right",
        loss=lambda agent, batch: agent.world_model.compute_loss(
            batch, agent.tokenizer, metrics_as_tensors=True
        ),
        eval_batches=lambda samples, batch: max(1, math.ceil(samples / 10 / batch)),
    ),
    ComponentSpec(
        "actor_critic",
        segment_length=lambda cfg: cfg.actor_critic.burn_in + 1,
        context=_context,
        padding="left",
        loss=lambda agent, batch: agent.actor_critic.compute_loss(
            batch, agent.tokenizer, agent.world_model, metrics_as_tensors=True
        ),
        eval_batches=None,
    ),
)
TOKENIZER, WORLD_MODEL, ACTOR_CRITIC = COMPONENTS
