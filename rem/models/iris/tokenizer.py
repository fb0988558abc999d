"""IRIS's discrete autoencoder (docs/protocol.md#iris): 64x64 RGB frame <-> 4x4 = 16 tokens.

Interface (the same as rem.models.tokenizer.Tokenizer, so the trainer, the imagination env,
the actor-critics and the evaluation drive either one):

    tok = IrisTokenizer(IrisTokenizerConfig(), perceptual=lpips_or_None)
    enc = tok.encode(frames)            # (b, 3, 64, 64) in [0, 1] -> TokenizerEncoding
    enc.tokens                          # (b, 16) long, row-major over the 4x4 grid
    tok.decode(enc.z_quantized)         # (b, 512, 4, 4) -> (b, 3, 64, 64) in [0, 1], clamped
    tok.codes_from_tokens(tokens)       # (b, 16) -> (b, 512, 4, 4)
    loss, metrics = tok.compute_loss({"observations": (..., 3, 64, 64), "mask_padding": (...)})
    # metrics: commitment_loss, reconstruction_loss, perceptual_loss, loss

Quantiser: nearest codebook row (squared Euclidean, at least fp32), straight-through
gradients; codebook initialised U(-1/V, 1/V). Loss (IRIS's `Tokenizer.compute_loss`):
commitment ||sg(z) - e||^2 + beta ||z - sg(e)||^2 with beta = 1, L1 reconstruction in
[-1, 1] space and LPIPS, all weight 1. REM's tokenizer differs only in its nets and in MSE
instead of L1.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from rem.models.iris.config import FRAME_SIZE, IrisTokenizerConfig
from rem.models.iris.nets import Decoder, Encoder
from rem.models.precision import at_least_fp32
from rem.models.tokenizer import TokenizerEncoding

BETA = 1.0  # IRIS's commitment weight (VQ-VAE uses 0.25)


class IrisTokenizer(nn.Module):
    """`perceptual` (a frozen `LPIPS`) is kept as a submodule so checkpoints hold it; None
    (with `cfg.perceptual_loss=False`) drops the perceptual term."""

    def __init__(self, cfg: IrisTokenizerConfig, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        if cfg.perceptual_loss and perceptual is None:
            raise ValueError(
                "the IRIS tokenizer's perceptual loss is on but no LPIPS module was given; "
                "build it with rem.models.agent.build_agent (loads the weights) or set "
                "tokenizer.perceptual_loss=false"
            )
        self.cfg = cfg
        self.grid = cfg.grid
        self.tokens_per_frame = cfg.tokens_per_frame
        self.vocab_size = cfg.vocab_size
        self.embed_dim = cfg.embed_dim
        self.encoder = Encoder(cfg)
        self.pre_quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / cfg.vocab_size, 1.0 / cfg.vocab_size)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg)
        self.perceptual = perceptual if cfg.perceptual_loss else None

    # ------------------------------------------------------------------ codes and tokens

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (...) long -> (..., e) codebook vectors."""
        return self.embedding(tokens)

    def codes_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (b, h*w) long -> (b, e, h, w) codebook vectors."""
        return rearrange(self.embedding(tokens), "b (h w) e -> b e h w", h=self.grid)

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (b, e, h, w) -> (codebook vectors (b, e, h, w), no straight-through; tokens (b, h*w))."""
        flat = at_least_fp32(rearrange(z, "b e h w -> (b h w) e"))
        codebook = self.embedding.weight.to(flat.dtype)
        # >= fp32 so bf16 autocast cannot flip argmins
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            + codebook.pow(2).sum(1)[None, :]
            - 2.0 * flat @ codebook.t()
        )
        tokens = rearrange(dist.argmin(dim=1), "(b k) -> b k", b=z.shape[0])
        return self.codes_from_tokens(tokens).to(z.dtype), tokens

    # ------------------------------------------------------------------ encode / decode

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, 64, 64) in [0, 1] -> [-1, 1], in the tokenizer's dtype."""
        if x.shape[-3:] != (3, FRAME_SIZE, FRAME_SIZE):
            raise ValueError(f"tokenizer expects (b, 3, 64, 64) frames, got {tuple(x.shape)}")
        return 2.0 * x.to(self.pre_quant_conv.weight.dtype) - 1.0

    def _encode_z(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, 3, 64, 64) in [-1, 1] -> z (b, e, grid, grid) before quantisation."""
        return self.pre_quant_conv(self.encoder(x))

    def encode(self, x: torch.Tensor) -> TokenizerEncoding:
        """x: (b, 3, 64, 64) float in [0, 1] -> TokenizerEncoding (z, z_quantized with
        straight-through gradients, tokens (b, K))."""
        z = self._encode_z(self._preprocess(x))
        z_q, tokens = self._quantize(z)
        return TokenizerEncoding(z=z, z_quantized=z + (z_q - z).detach(), tokens=tokens)

    def decode_raw(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q: (b, e, h, w) -> (b, 3, 64, 64) unclamped, in [-1, 1] space."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q: (b, e, h, w) -> (b, 3, 64, 64) in [0, 1], clamped (IRIS clamps every frame
        the actor-critic sees)."""
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
        batch["mask_padding"] (...) is False get weight 0 (IRIS's tokenizer batches have no
        padding; with all frames real every term is IRIS's plain mean). Returns (loss,
        metrics) as floats, or as detached 0-d tensors with `metrics_as_tensors` (no sync).
        """
        x = self._preprocess(rearrange(batch["observations"], "... c h w -> (...) c h w"))
        weight = None
        if "mask_padding" in batch:
            weight = rearrange(batch["mask_padding"], "... -> (...)").float()

        def frame_mean(per_frame: torch.Tensor) -> torch.Tensor:
            """(n, ...) -> scalar: mean over each frame's elements, then over real frames."""
            per_frame = per_frame.flatten(1).mean(1) if per_frame.dim() > 1 else per_frame
            if weight is None:
                return per_frame.mean()
            return (per_frame * weight).sum() / weight.sum().clamp(min=1.0)

        z = self._encode_z(x)
        z_q, _ = self._quantize(z)
        recon = at_least_fp32(self.decode_raw(z + (z_q - z).detach()))
        z, z_q, target = at_least_fp32(z), at_least_fp32(z_q), at_least_fp32(x)
        commitment = frame_mean((z.detach() - z_q) ** 2) + BETA * frame_mean(
            (z - z_q.detach()) ** 2
        )
        reconstruction = frame_mean((recon - target).abs())
        names, values = ["commitment_loss", "reconstruction_loss"], [commitment, reconstruction]
        loss = commitment + reconstruction
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
