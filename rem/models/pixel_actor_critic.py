"""Pixel actor-critic on tokenizer reconstructions ("no-latent-ac" ablation).

IRIS-style: four [conv 3x3 -> max-pool 2 -> ReLU] blocks (32, 32, 64, 64 channels) on the
reconstructed frame in [-1, 1] -> 4x4x64 = 1024 -> LSTMCell(1024, hidden) -> actor / critic.
No action inputs. Real frames are encoded and decoded; imagined frames are decoded from the
sampled tokens. Acting, burn-in and imagination are shared with LSAC.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from rem.config import ActorCriticConfig
from rem.models.actor_critic import RecurrentActorCritic


class PixelActorCritic(RecurrentActorCritic):
    include_action_inputs = False

    def __init__(
        self, cfg: ActorCriticConfig, num_actions: int, *, context_length: int = 2
    ) -> None:
        super().__init__(cfg, num_actions, 1024, context_length)
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in (32, 32, 64, 64):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.MaxPool2d(2, 2), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 3, 64, 64) in [-1, 1] -> (n, 1024)."""
        return rearrange(self.convs(x), "n c h w -> n (c h w)")

    def inputs_from_codes(self, codes: torch.Tensor, tokenizer: nn.Module) -> torch.Tensor:
        """codes (n, e, h, w) -> reconstruction (n, 3, 64, 64) rescaled to [-1, 1]."""
        return 2.0 * tokenizer.decode(codes) - 1.0

    def action_embedding(self, actions: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the pixel actor-critic has no action inputs")
