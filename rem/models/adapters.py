"""The run config's sections mapped onto another agent's model configs (IRIS's here).

rem.models.iris has typed configs of its own (IrisTokenizerConfig, IrisWorldModelConfig);
a run keeps one `Config` (rem.config) for every agent, so presets, variants, overrides,
manifests and checkpoints work the same. The mapping:

| run config | IRIS |
|---|---|
| tokenizer.vocab_size, embed_dim, z_channels | the same |
| tokenizer.base_channels | channels (a multiple of 32: GroupNorm has 32 groups) |
| tokenizer.num_downsample_steps = n | channel_multipliers (1,) * (n + 1): 4 -> 4x4 tokens |
| tokenizer.perceptual_loss | the same |
| world_model.num_layers, num_heads, embed_dim, max_blocks, context_length, sample_imagined_reward_done | the same |
| world_model.dropout | embed, residual and attention dropout |
| world_model.ffn_dim | must be 4 x embed_dim (IRIS's MLP; checked here) |

IRIS's other knobs (2 residual blocks per level, attention at 8x8 and 16x16, tokenizer
dropout 0, causal attention) keep IRIS's values.
"""

from __future__ import annotations

from torch import nn

from rem.config import ConfigError, TokenizerConfig, WorldModelConfig
from rem.models.iris import (
    IrisTokenizer,
    IrisTokenizerConfig,
    IrisWorldModel,
    IrisWorldModelConfig,
    iris_param_groups,
)

__all__ = [
    "build_iris_tokenizer",
    "build_iris_world_model",
    "iris_param_groups",
    "iris_tokenizer_config",
    "iris_world_model_config",
]


def iris_tokenizer_config(cfg: TokenizerConfig) -> IrisTokenizerConfig:
    try:
        return IrisTokenizerConfig(
            vocab_size=cfg.vocab_size,
            embed_dim=cfg.embed_dim,
            z_channels=cfg.z_channels,
            channels=cfg.base_channels,
            channel_multipliers=(1,) * (cfg.num_downsample_steps + 1),
            perceptual_loss=cfg.perceptual_loss,
            norm_groups=cfg.norm_groups,
        )
    except ValueError as err:
        raise ConfigError(f"tokenizer (IRIS's): {err}") from None


def iris_world_model_config(cfg: WorldModelConfig) -> IrisWorldModelConfig:
    if cfg.ffn_dim != 4 * cfg.embed_dim:
        raise ConfigError(
            f"IRIS's transformer MLP is 4 x embed_dim: world_model.ffn_dim must be "
            f"{4 * cfg.embed_dim}, got {cfg.ffn_dim}"
        )
    return IrisWorldModelConfig(
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        embed_dim=cfg.embed_dim,
        max_blocks=cfg.max_blocks,
        embed_dropout=cfg.dropout,
        resid_dropout=cfg.dropout,
        attn_dropout=cfg.dropout,
        context_length=cfg.context_length,
        sample_imagined_reward_done=cfg.sample_imagined_reward_done,
    )


def build_iris_tokenizer(cfg: TokenizerConfig, perceptual: nn.Module | None) -> IrisTokenizer:
    return IrisTokenizer(iris_tokenizer_config(cfg), perceptual)


def build_iris_world_model(
    cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int
) -> IrisWorldModel:
    return IrisWorldModel(
        iris_world_model_config(cfg), iris_tokenizer_config(tokenizer_cfg), num_actions
    )
