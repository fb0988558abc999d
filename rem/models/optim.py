"""Optimisers per component (docs/protocol.md#optimisation).

- tokenizer: AdamW, weight decay `training.tokenizer.weight_decay` (0.01 = PyTorch's default,
  kept from the reference) on every trainable parameter incl. the codebook, norms and biases;
  the frozen LPIPS tensors have no gradient, so AdamW never touches them.
- world model: AdamW with two groups: `training.world_model.weight_decay` (0.05) on the
  weights of `nn.Linear` layers only; 0 on biases, norms, embedding tables and prediction
  tokens (anything that is not a Linear weight).
- actor-critic: AdamW, `training.actor_critic.weight_decay` (0.01) on everything.
Betas (0.9, 0.999) and eps 1e-8 are AdamW's defaults.

IRIS (the agent's registry entry says `optimizers: iris`): Adam for the tokenizer and the
actor-critic (AdamW with the presets' weight decay 0 is the same update), AdamW with minGPT's
two groups for the world model (rem.models.adapters.iris_param_groups: decay on the weights
of Linear layers, none on biases, norms, embeddings and position embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rem.config import Config


@dataclass
class Optimizers:
    tokenizer: torch.optim.AdamW
    world_model: torch.optim.AdamW
    actor_critic: torch.optim.AdamW

    def state_dict(self) -> dict[str, dict]:
        return {name: getattr(self, name).state_dict() for name in _NAMES}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for name in _NAMES:
            getattr(self, name).load_state_dict(state[name])


_NAMES = ("tokenizer", "world_model", "actor_critic")


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def world_model_param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: Linear weights (decayed) and every other trainable parameter."""
    decay_ids = {
        id(m.weight)
        for m in module.modules()
        if isinstance(m, nn.Linear) and m.weight.requires_grad
    }
    params = trainable(module)
    decay = [p for p in params if id(p) in decay_ids]
    no_decay = [p for p in params if id(p) not in decay_ids]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizers(agent: nn.Module, cfg: Config) -> Optimizers:
    """AdamW optimisers for `agent.tokenizer`, `agent.world_model`, `agent.actor_critic`."""
    t = cfg.training
    if cfg.spec.optimizers == "iris":
        from rem.models.adapters import iris_param_groups

        wm_groups = iris_param_groups(agent.world_model, t.world_model.weight_decay)
    else:
        wm_groups = world_model_param_groups(agent.world_model, t.world_model.weight_decay)
    return Optimizers(
        tokenizer=torch.optim.AdamW(
            trainable(agent.tokenizer), lr=t.tokenizer.lr, weight_decay=t.tokenizer.weight_decay
        ),
        world_model=torch.optim.AdamW(wm_groups, lr=t.world_model.lr),
        actor_critic=torch.optim.AdamW(
            trainable(agent.actor_critic),
            lr=t.actor_critic.lr,
            weight_decay=t.actor_critic.weight_decay,
        ),
    )
