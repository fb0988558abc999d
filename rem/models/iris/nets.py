"""IRIS's VQGAN-style encoder and decoder (taming-transformers' design, as IRIS uses it).

Encoder: conv_in -> per level [num_res_blocks x (ResBlock [+ Attn at attn resolutions])]
(+ Downsample except after the last level) -> mid [ResBlock, Attn, ResBlock] -> GN -> swish
-> conv to z_channels. Decoder mirrors it with num_res_blocks + 1 blocks per level and
Upsample between levels. GroupNorm has 32 groups (eps 1e-6; `norm_groups` lowers it for
widths under 32, IRIS's own minimum); no time embedding, so no
`temb_proj` layers (IRIS builds none either).

Parameter names follow IRIS's (`down.2.attn.0.q.weight`, `mid.block_1.conv1.weight`, ...)
so a state dict of IRIS's tokenizer loads into ours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from rem.models.iris.config import FRAME_SIZE, IrisTokenizerConfig


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """(b, c_in, h, w) -> (b, c_out, h, w): x + conv(swish(GN(conv(swish(GN(x)))))), with a 1x1
    shortcut when the widths differ."""

    def __init__(self, c_in: int, c_out: int, dropout: float, *, groups: int = 32) -> None:
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """(b, c, h, w) -> same: one-head self-attention over the h*w positions, 1x1 convs for
    q, k, v and the output, scale c^-1/2, residual."""

    def __init__(self, channels: int, *, groups: int = 32) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = (rearrange(f(h), "b c h w -> b 1 (h w) c") for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=x.shape[-2])
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """(b, c, h, w) -> (b, c, h/2, w/2): zero-pad right and bottom, 3x3 stride-2 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """(b, c, h, w) -> (b, c, 2h, 2w): nearest 2x, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: residual blocks, each followed by attention when `attend`, then
    an optional resampling layer (`downsample` or `upsample`, IRIS's names)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        num_blocks: int,
        attend: bool,
        dropout: float,
        resample: str | None = None,
        *,
        groups: int = 32,
    ) -> None:
        super().__init__()
        widths = [c_in] + [c_out] * num_blocks
        self.block = nn.ModuleList(
            ResBlock(a, b, dropout, groups=groups) for a, b in zip(widths[:-1], widths[1:])
        )
        self.attn = nn.ModuleList(
            AttnBlock(c_out, groups=groups) for _ in range(num_blocks if attend else 0)
        )
        self.resample_name = resample
        if resample == "downsample":
            self.downsample = Downsample(c_out)
        elif resample == "upsample":
            self.upsample = Upsample(c_out)
        elif resample is not None:
            raise ValueError(f"resample must be downsample, upsample or None, got {resample!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[i](x)
        if self.resample_name is not None:
            x = getattr(self, self.resample_name)(x)
        return x


class Middle(nn.Module):
    """ResBlock -> AttnBlock -> ResBlock at the lowest resolution, width unchanged."""

    def __init__(self, channels: int, dropout: float, *, groups: int = 32) -> None:
        super().__init__()
        self.block_1 = ResBlock(channels, channels, dropout, groups=groups)
        self.attn_1 = AttnBlock(channels, groups=groups)
        self.block_2 = ResBlock(channels, channels, dropout, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """(b, 3, 64, 64) in [-1, 1] -> (b, z_channels, grid, grid)."""

    def __init__(self, cfg: IrisTokenizerConfig) -> None:
        super().__init__()
        mults = cfg.channel_multipliers
        self.conv_in = nn.Conv2d(3, cfg.channels, 3, padding=1)
        self.down = nn.ModuleList()
        res, c_in = FRAME_SIZE, cfg.channels
        for i, mult in enumerate(mults):
            c_out = cfg.channels * mult
            last = i == len(mults) - 1
            self.down.append(
                Level(
                    c_in,
                    c_out,
                    cfg.num_res_blocks,
                    res in cfg.attn_resolutions,
                    cfg.dropout,
                    None if last else "downsample",
                    groups=cfg.norm_groups,
                )
            )
            res = res if last else res // 2
            c_in = c_out
        self.mid = Middle(c_in, cfg.dropout, groups=cfg.norm_groups)
        self.norm_out = _norm(c_in, cfg.norm_groups)
        self.conv_out = nn.Conv2d(c_in, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    """(b, z_channels, grid, grid) -> (b, 3, 64, 64), raw (IRIS's [-1, 1] space, unclamped).

    `up` is indexed by level as in IRIS (up[0] is the full-resolution level) and run from
    the last level to the first.
    """

    def __init__(self, cfg: IrisTokenizerConfig) -> None:
        super().__init__()
        mults = cfg.channel_multipliers
        c_in = cfg.channels * mults[-1]
        res = cfg.grid
        self.conv_in = nn.Conv2d(cfg.z_channels, c_in, 3, padding=1)
        self.mid = Middle(c_in, cfg.dropout, groups=cfg.norm_groups)
        levels: list[Level] = []
        for i in reversed(range(len(mults))):
            c_out = cfg.channels * mults[i]
            attend = res in cfg.attn_resolutions
            resample = "upsample" if i > 0 else None
            levels.insert(
                0,
                Level(
                    c_in,
                    c_out,
                    cfg.num_res_blocks + 1,
                    attend,
                    cfg.dropout,
                    resample,
                    groups=cfg.norm_groups,
                ),
            )
            res = res * 2 if i > 0 else res
            c_in = c_out
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(c_in, cfg.norm_groups)
        self.conv_out = nn.Conv2d(c_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
