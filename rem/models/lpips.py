"""LPIPS perceptual distance (VGG16 variant, v0.1 linear weights), as the reference uses it.

distance(x, y) = sum over 5 VGG slices of spatial_mean(lin_i((n(f_i(x)) - n(f_i(y)))^2))
with n = unit normalisation over channels and lin_i = Dropout(0.5) + 1x1 conv C_i -> 1
(no bias). Inputs are in [-1, 1] and pass a fixed scaling layer first.
All parameters are frozen; gradients still flow to the inputs (the reconstruction).

Parameter names follow the published files: `lin0.model.1.weight` ... `lin4.model.1.weight`
(LPIPS v0.1 `vgg.pth`) and `net.features.*` (torchvision VGG16), so both load directly.

Dropout (kept from the reference, docs/protocol.md#tokenizer): the reference puts LPIPS in eval mode once, but the trainer
calls `agent.train()` every epoch, so the lin dropout is active during tokenizer training.
`dropout_in_train=True` reproduces that; `False` keeps the dropout off in every mode.
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import reduce
from torch import nn

from rem.models.precision import at_least_fp32
from rem.models.vgg import VGG16_WIDTHS, VGG16Features

# Per-RGB-channel scaling of [-1, 1] inputs to the statistics VGG was trained on.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class ScalingLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class NetLinLayer(nn.Module):
    """Dropout(0.5) then a 1x1 conv C -> 1 without bias (key `model.1.weight`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_normalise(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """f: (b, c, h, w) -> f / ||f||_c, per pixel."""
    norm = torch.sqrt(torch.sum(f * f, dim=1, keepdim=True))
    return f / (norm + eps)


class LPIPS(nn.Module):
    """Frozen LPIPS-VGG. `forward(x, y)`: (b, 3, h, w) x2 in [-1, 1] -> (b,) distances.

    `net` defaults to a full-size VGG16 (random weights until `load_weights` is called);
    tests pass a tiny `VGG16Features(widths=...)` stand-in.
    """

    def __init__(self, net: VGG16Features | None = None, dropout_in_train: bool = True) -> None:
        super().__init__()
        self.scaling = ScalingLayer()
        self.net = net if net is not None else VGG16Features(VGG16_WIDTHS)
        self.dropout_in_train = dropout_in_train
        for i, width in enumerate(self.net.widths):
            self.add_module(f"lin{i}", NetLinLayer(width))
        self.requires_grad_(False)

    @property
    def lins(self) -> list[NetLinLayer]:
        return [getattr(self, f"lin{i}") for i in range(len(self.net.widths))]

    def train(self, mode: bool = True) -> LPIPS:
        super().train(mode)
        if not self.dropout_in_train:
            for lin in self.lins:
                lin.model[0].eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: (b, 3, h, w) in [-1, 1] -> (b,)."""
        fx = self.net(self.scaling(x))
        fy = self.net(self.scaling(y))
        total = 0.0
        # Normalisation and the lin layers in at least fp32: under bf16 autocast only the VGG
        # convs drop (a float64 module stays float64).
        with torch.autocast(device_type=x.device.type, enabled=False):
            for lin, a, b in zip(self.lins, fx, fy):
                diff = (_unit_normalise(at_least_fp32(a)) - _unit_normalise(at_least_fp32(b))) ** 2
                total = total + reduce(lin(diff), "b 1 h w -> b", "mean")
        return total

    def load_weights(self, vgg_path: str | Path, lin_path: str | Path) -> None:
        """Load torchvision VGG16 features and the LPIPS v0.1 lin weights (strict on both)."""
        self.net.load_torchvision_checkpoint(vgg_path)
        state = torch.load(lin_path, map_location="cpu", weights_only=True)
        expected = {f"lin{i}.model.1.weight" for i in range(len(self.lins))}
        if set(state) != expected:
            raise ValueError(
                f"{lin_path} is not an LPIPS v0.1 VGG lin-weight file: keys {sorted(state)[:6]}, "
                f"expected {sorted(expected)}. Re-download it with `rem weights fetch`."
            )
        for i, lin in enumerate(self.lins):
            weight = state[f"lin{i}.model.1.weight"]
            if weight.shape != lin.model[1].weight.shape:
                raise ValueError(
                    f"{lin_path}: lin{i} has shape {tuple(weight.shape)}, expected "
                    f"{tuple(lin.model[1].weight.shape)}"
                )
            lin.model[1].weight.data.copy_(weight)
