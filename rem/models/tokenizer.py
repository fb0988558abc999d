"""VQ tokenizer (docs/protocol.md#tokenizer): 64x64 RGB frame <-> grid of discrete tokens.

Encoder: conv, `num_downsample_steps` stages of [GN -> SiLU -> pad right/bottom -> stride-2
conv (c -> 2c) -> conv], GN -> SiLU -> conv to z channels, 1x1 pre-quant conv.
Quantiser: nearest codebook row (squared Euclidean), straight-through gradients.
Decoder: 1x1 post-quant conv, conv, stages of [GN -> SiLU -> nearest-exact 2x -> conv -> conv],
GN -> SiLU -> conv to RGB. All in [-1, 1] space; `decode` maps back to [0, 1] and clamps.
Loss: commitment (beta 1) + MSE reconstruction + LPIPS (all weight 1).
Tokens are ordered row-major over the (h, w) grid.

Precision: frames are cast to the tokenizer's dtype (float32 frames feed a `.double()`
tokenizer); quantisation distances and losses run in at least float32 (bf16 autocast would
flip argmins and lose the loss's precision), float64 in a float64 tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from rem.config import TokenizerConfig
from rem.models.precision import at_least_fp32

FRAME_SIZE = 64


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels, eps=1e-6, affine=True)


class Downsample(nn.Module):
    """Zero-pad right and bottom by one pixel, then a 3x3 stride-2 conv without padding."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest-exact")


class Encoder(nn.Module):
    """(b, 3, 64, 64) in [-1, 1] -> (b, z_channels, 64 / 2^n, 64 / 2^n)."""

    def __init__(self, base_channels: int, z_channels: int, num_downsample_steps: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, base_channels, 3, padding=1)
        stages = []
        c = base_channels
        for _ in range(num_downsample_steps):
            stages.append(
                nn.Sequential(
                    _norm(c),
                    nn.SiLU(),
                    Downsample(c, 2 * c),
                    nn.Conv2d(2 * c, 2 * c, 3, padding=1),
                )
            )
            c *= 2
        self.stages = nn.Sequential(*stages)
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, z_channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.stages(self.conv_in(x)))


class Decoder(nn.Module):
    """(b, z_channels, h, w) -> (b, 3, h * 2^n, w * 2^n), raw output in [-1, 1] space."""

    def __init__(self, base_channels: int, z_channels: int, num_downsample_steps: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        stages = []
        for i in range(num_downsample_steps):
            # Halve the channels each stage, never below the first encoder width.
            c_in = max(z_channels // 2**i, base_channels)
            c_out = max(z_channels // 2 ** (i + 1), base_channels)
            stages.append(
                nn.Sequential(
                    _norm(c_in),
                    nn.SiLU(),
                    Upsample(),
                    nn.Conv2d(c_in, c_out, 3, padding=1),
                    nn.Conv2d(c_out, c_out, 3, padding=1),
                )
            )
        self.stages = nn.Sequential(*stages)
        c_last = max(z_channels // 2**num_downsample_steps, base_channels)
        self.out = nn.Sequential(_norm(c_last), nn.SiLU(), nn.Conv2d(c_last, 3, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.stages(self.conv_in(z)))


@dataclass
class TokenizerEncoding:
    """z: (b, e, h, w) encoder output; z_quantized: (b, e, h, w) codebook vectors with
    straight-through gradients to z; tokens: (b, h*w) long, row-major."""

    z: torch.Tensor
    z_quantized: torch.Tensor
    tokens: torch.Tensor


class Tokenizer(nn.Module):
    """VQ tokenizer. `perceptual` (an `LPIPS`, frozen) is kept as a submodule so it is saved
    with checkpoints; None disables the perceptual loss term."""

    def __init__(self, cfg: TokenizerConfig, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        if cfg.perceptual_loss and perceptual is None:
            raise ValueError(
                "tokenizer.perceptual_loss is on but no LPIPS module was given; build the "
                "tokenizer with rem.models.agent.build_agent (loads the weights) or set "
                "tokenizer.perceptual_loss=false"
            )
        self.cfg = cfg
        self.grid = FRAME_SIZE // 2**cfg.num_downsample_steps
        self.tokens_per_frame = self.grid * self.grid
        self.vocab_size = cfg.vocab_size
        self.embed_dim = cfg.embed_dim
        self.encoder = Encoder(cfg.base_channels, cfg.z_channels, cfg.num_downsample_steps)
        self.pre_quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / cfg.vocab_size, 1.0 / cfg.vocab_size)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg.base_channels, cfg.z_channels, cfg.num_downsample_steps)
        self.perceptual = perceptual if cfg.perceptual_loss else None

    # ------------------------------------------------------------------ codes and tokens

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (...) long -> (..., e) codebook vectors."""
        return self.embedding(tokens)

    def codes_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (b, h*w) long -> (b, e, h, w) codebook vectors."""
        return rearrange(self.embedding(tokens), "b (h w) e -> b e h w", h=self.grid)

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (b, e, h, w) -> (codebook vectors (b, e, h, w) without straight-through, tokens (b, h*w))."""
        flat = at_least_fp32(rearrange(z, "b e h w -> (b h w) e"))
        codebook = self.embedding.weight.to(flat.dtype)
        # ||z - c||^2 = ||z||^2 + ||c||^2 - 2 z.c; >= fp32 so bf16 autocast cannot flip argmins.
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            + codebook.pow(2).sum(1)[None, :]
            - 2.0 * flat @ codebook.t()
        )
        tokens = rearrange(dist.argmin(dim=1), "(b k) -> b k", b=z.shape[0])
        return self.codes_from_tokens(tokens).to(z.dtype), tokens

    # ------------------------------------------------------------------ encode / decode

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Float frames in the tokenizer's own dtype (autocast still applies inside)."""
        return x.to(self.pre_quant_conv.weight.dtype)

    def encode(self, x: torch.Tensor) -> TokenizerEncoding:
        """x: (b, 3, 64, 64) float in [0, 1] -> TokenizerEncoding."""
        if x.shape[-3:] != (3, FRAME_SIZE, FRAME_SIZE):
            raise ValueError(f"tokenizer expects (b, 3, 64, 64) frames, got {tuple(x.shape)}")
        z = self.pre_quant_conv(self.encoder(2.0 * self._frames(x) - 1.0))
        z_q, tokens = self._quantize(z)
        z_st = z + (z_q - z).detach()  # straight-through: forward z_q, gradient to z
        return TokenizerEncoding(z=z, z_quantized=z_st, tokens=tokens)

    def decode_raw(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q: (b, e, h, w) -> (b, 3, 64, 64) unclamped, in [-1, 1] space."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q: (b, e, h, w) -> (b, 3, 64, 64) in [0, 1] (clamped)."""
        return ((self.decode_raw(z_q) + 1.0) / 2.0).clamp(0.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, 3, 64, 64) in [0, 1] -> encode -> decode, (b, 3, 64, 64) in [0, 1]."""
        return self.decode(self.encode(x).z_quantized)

    # ------------------------------------------------------------------ loss

    def compute_loss(
        self, batch: dict[str, torch.Tensor], *, metrics_as_tensors: bool = False
    ) -> tuple[torch.Tensor, dict]:
        """batch["observations"]: (..., 3, 64, 64) float in [0, 1]; frames where
        batch["mask_padding"] (...) is False get weight 0. Returns (loss, metrics): metrics as
        floats, or as detached 0-d tensors with `metrics_as_tensors` (no host-device sync at all;
        the trainer reads them once per phase).

        Each term is a mean over the real frames of a per-frame mean. Padded frames are weighted
        out rather than selected: selecting them by the mask would read it on the host, a
        synchronisation in every training step.
        """
        x = self._frames(rearrange(batch["observations"], "... c h w -> (...) c h w"))
        weight = None
        if "mask_padding" in batch:
            weight = rearrange(batch["mask_padding"], "... -> (...)").float()

        def frame_mean(per_frame: torch.Tensor) -> torch.Tensor:
            """(n, ...) -> scalar: mean over elements of each frame, then over real frames."""
            per_frame = per_frame.flatten(1).mean(1) if per_frame.dim() > 1 else per_frame
            if weight is None:
                return per_frame.mean()
            # clamp: a batch without real frames gives 0, never NaN (the sampler cannot make one)
            return (per_frame * weight).sum() / weight.sum().clamp(min=1.0)

        z = self.pre_quant_conv(self.encoder(2.0 * x - 1.0))
        z_q, _ = self._quantize(z)
        z, z_q = at_least_fp32(z), at_least_fp32(z_q)
        commitment = frame_mean((z_q - z.detach()) ** 2) + 1.0 * frame_mean((z - z_q.detach()) ** 2)
        target = 2.0 * at_least_fp32(x) - 1.0
        recon = at_least_fp32(self.decode_raw(z + (z_q - z).detach()))
        reconstruction = frame_mean((recon - target) ** 2)
        loss = commitment + reconstruction
        names, values = ["commitment_loss", "reconstruction_loss"], [commitment, reconstruction]
        if self.perceptual is not None:
            perceptual = frame_mean(at_least_fp32(self.perceptual(target, recon)))
            loss = loss + perceptual
            names.append("perceptual_loss")
            values.append(perceptual)
        names.append("loss")
        values.append(loss)
        stacked = torch.stack(values).detach()
        if metrics_as_tensors:
            return loss, dict(zip(names, stacked.unbind()))
        return loss, dict(zip(names, stacked.tolist()))  # one sync for all metrics
