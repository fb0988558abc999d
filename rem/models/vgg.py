"""VGG16 convolutional feature stack (torchvision layout, no torchvision dependency).

`VGG16Features.features` is an `nn.Sequential` with exactly torchvision's indices
(conv, ReLU, ..., max-pool), so `state_dict()` keys are `features.0.weight`,
`features.0.bias`, ..., `features.28.bias` and an ImageNet checkpoint in torchvision's
format (`vgg16-397923af.pth`, which also holds `classifier.*`) loads directly.
LPIPS reads the ReLU outputs at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3
(feature indices [0:4], [4:9], [9:16], [16:23], [23:30]).

`widths` exists so tests can build a tiny randomly initialised stand-in with the same
structure (same slices, same keys, smaller channel counts).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

VGG16_WIDTHS = (64, 128, 256, 512, 512)
# Convolutions per stage of VGG16 ("configuration D").
_CONVS_PER_STAGE = (2, 2, 3, 3, 3)
# LPIPS slice boundaries over `features` indices: each slice ends after a stage's last ReLU.
SLICE_BOUNDS = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))


class VGG16Features(nn.Module):
    """The 31-module `features` stack of VGG16; `forward` returns the 5 LPIPS activations."""

    def __init__(self, widths: tuple[int, ...] = VGG16_WIDTHS) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"VGG16 has 5 stages; widths must have 5 entries, got {widths}")
        self.widths = tuple(widths)
        layers: list[nn.Module] = []
        in_ch = 3
        for width, n_convs in zip(widths, _CONVS_PER_STAGE):
            for _ in range(n_convs):
                layers += [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (b, 3, h, w) -> 5 feature maps (b, c_i, h / 2^i, w / 2^i), c_i = widths[i]."""
        outs = []
        for start, stop in SLICE_BOUNDS:
            for i in range(start, stop):
                x = self.features[i](x)
            outs.append(x)
        return outs

    def load_torchvision_checkpoint(self, path: str | Path) -> None:
        """Load the `features.*` tensors of a torchvision VGG16 checkpoint (others ignored)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        features = {k: v for k, v in state.items() if k.startswith("features.")}
        expected = set(self.state_dict())
        missing = sorted(expected - set(features))
        unexpected = sorted(set(features) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not a torchvision VGG16 checkpoint: missing keys {missing[:4]}, "
                f"unexpected keys {unexpected[:4]}. Re-download it with `rem weights fetch`."
            )
        for key, value in features.items():
            own = self.state_dict()[key]
            if own.shape != value.shape:
                raise ValueError(
                    f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(own.shape)} "
                    f"(widths {self.widths}); re-download it with `rem weights fetch`."
                )
        self.load_state_dict(features, strict=True)
