"""IRIS's model configs (docs/protocol.md#iris): typed dataclasses whose defaults are IRIS's
published config (eloialonso/iris config/tokenizer/default.yaml, config/world_model/default.yaml).

    IrisTokenizerConfig(...)   -> rem.models.iris.tokenizer.IrisTokenizer(cfg, perceptual)
    IrisWorldModelConfig(...)  -> rem.models.iris.world_model.IrisWorldModel(cfg, tokenizer_cfg, A)

The run config (rem.config) maps its own sections onto these (rem.config may not import
rem.models); nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_SIZE = 64


@dataclass(frozen=True)
class IrisTokenizerConfig:
    """VQGAN-style encoder/decoder (taming-transformers') and a 512 x 512 codebook.

    channel_multipliers has one entry per resolution level; every level but the last halves
    the resolution, so 5 levels give 64 -> 4, i.e. 4x4 = 16 tokens per frame. Self-attention
    follows each residual block of the levels whose resolution is in attn_resolutions.
    """

    vocab_size: int = 512
    embed_dim: int = 512
    z_channels: int = 512
    channels: int = 64
    channel_multipliers: tuple[int, ...] = (1, 1, 1, 1, 1)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8, 16)
    dropout: float = 0.0
    perceptual_loss: bool = True
    norm_groups: int = 32  # GroupNorm groups; IRIS's 32 need widths of 32 and more

    def __post_init__(self) -> None:
        if not self.channel_multipliers:
            raise ValueError("IrisTokenizerConfig.channel_multipliers must not be empty")
        if FRAME_SIZE % 2 ** (len(self.channel_multipliers) - 1):
            raise ValueError(
                f"{len(self.channel_multipliers)} resolution levels do not divide a "
                f"{FRAME_SIZE}x{FRAME_SIZE} frame; use at most 7"
            )
        for width in (self.channels * m for m in self.channel_multipliers):
            if width % self.norm_groups:
                raise ValueError(
                    f"GroupNorm has {self.norm_groups} groups (norm_groups): channels x "
                    f"multipliers must be multiples of it, got {width}"
                )

    @property
    def grid(self) -> int:
        """Side of the token grid: 64 / 2^(levels - 1)."""
        return FRAME_SIZE // 2 ** (len(self.channel_multipliers) - 1)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class IrisWorldModelConfig:
    """GPT world model (minGPT-style, pre-LayerNorm). max_blocks blocks of K + 1 tokens
    (K observation tokens, one action token) fit its position table; attention "causal"
    (IRIS's default) or "block_causal" (tokens of one block also see each other)."""

    num_layers: int = 10
    num_heads: int = 4
    embed_dim: int = 256
    max_blocks: int = 20
    embed_dropout: float = 0.1
    resid_dropout: float = 0.1
    attn_dropout: float = 0.1
    attention: str = "causal"
    # Real frames an imagined rollout starts from (IRIS: the last one); also where the
    # world-model evaluation starts scoring frames. Training has a loss on every block.
    context_length: int = 1
    sample_imagined_reward_done: bool = True  # IRIS samples rewards and ends in imagination

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"world-model embed_dim {self.embed_dim} must be a multiple of num_heads "
                f"{self.num_heads}"
            )
        if self.attention not in ("causal", "block_causal"):
            raise ValueError(
                f"world-model attention must be 'causal' or 'block_causal', got {self.attention!r}"
            )
        if self.max_blocks < 1 or self.num_layers < 1:
            raise ValueError("world-model max_blocks and num_layers must be >= 1")
        if not 1 <= self.context_length < self.max_blocks:
            raise ValueError(
                f"world-model context_length must be in [1, max_blocks), got {self.context_length}"
            )
