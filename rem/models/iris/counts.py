"""Parameter counts of IRIS's components at a config (for `rem summary --preset iris`).

    iris_parameter_counts(num_actions=18)
    # {"tokenizer": ..., "tokenizer.encoder": ..., ..., "world_model": ..., "actor_critic": ...}

The tokenizer count excludes the frozen LPIPS network (IRIS's own printout includes its
14.7M frozen VGG16 + lin parameters; `tokenizer_with_lpips` would need the weights).
Built on the meta device: nothing is allocated, so the paper-size count is instant.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from rem.config import ActorCriticConfig
from rem.models.iris.config import IrisTokenizerConfig, IrisWorldModelConfig
from rem.models.iris.tokenizer import IrisTokenizer
from rem.models.iris.world_model import IrisWorldModel
from rem.models.pixel_actor_critic import PixelActorCritic


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def iris_parameter_counts(
    num_actions: int,
    tokenizer_cfg: IrisTokenizerConfig | None = None,
    world_model_cfg: IrisWorldModelConfig | None = None,
    actor_critic_cfg: ActorCriticConfig | None = None,
) -> dict[str, int]:
    """Per-component parameter counts (defaults: IRIS's config) for `num_actions` actions."""
    tok_cfg = tokenizer_cfg or IrisTokenizerConfig()
    wm_cfg = world_model_cfg or IrisWorldModelConfig()
    ac_cfg = actor_critic_cfg or ActorCriticConfig(kind="pixel", imagination_horizon=20)
    with torch.device("meta"):
        tokenizer = IrisTokenizer(dataclasses.replace(tok_cfg, perceptual_loss=False))
        world_model = IrisWorldModel(wm_cfg, tok_cfg, num_actions)
        # the context length changes the imagination, not the parameters
        actor_critic = PixelActorCritic(ac_cfg, num_actions, context_length=2)
    counts = {"tokenizer": count(tokenizer)}
    for part in ("encoder", "decoder", "embedding"):
        counts[f"tokenizer.{part}"] = count(getattr(tokenizer, part))
    counts["world_model"] = count(world_model)
    counts["world_model.transformer"] = count(world_model.transformer)
    counts["actor_critic"] = count(actor_critic)
    counts["total"] = counts["tokenizer"] + counts["world_model"] + counts["actor_critic"]
    return counts
