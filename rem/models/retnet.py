"""RetNet layer and decoder (docs/protocol.md#world-model), as the `RetNetDecoder` of
yet-another-retnet (yar).

Layer: pre-LN (eps 1e-6), x = x + Drop(MSR(LN1(x))); x = x + FFN(LN2(x)) with
FFN = Linear(E, F) -> SiLU -> Dropout -> Linear(F, E) -> Dropout.
Decoder: N deep copies of one initialised layer (all layers start identical), no final LayerNorm.

Every method of the decoder mirrors a retention form (see retention.py) and threads one
recurrent state per layer: `states` is a list with one (b, h, d, e) tensor per layer, or None
for an empty (all-zero) state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from torch import Tensor, nn

from rem.models.retention import MultiScaleRetention

LayerStates = list[Tensor | None]


class RetNetLayer(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.retention = MultiScaleRetention(embed_dim, num_heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dim, ffn_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, embed_dim),
            nn.Dropout(dropout),
        )
        for module in (self.ffn[0], self.ffn[3]):
            nn.init.xavier_normal_(module.weight)
            nn.init.zeros_(module.bias)

    def _residual(self, x: Tensor, retain: Callable[[Tensor], tuple[Tensor, object]]):
        """Shared layer body; `retain` maps LN1(x) (b, n, E) to (MSR output, state info)."""
        y, extra = retain(self.norm1(x))
        x = x + self.dropout(y)
        return x + self.ffn(self.norm2(x)), extra

    def forward_parallel(self, x: Tensor, start: int | Tensor = 0) -> Tensor:
        """x (b, n, E) -> (b, n, E)."""
        out, _ = self._residual(x, lambda h: (self.retention.forward_parallel(h, start), None))
        return out

    def forward_chunkwise(self, x, start=0, state=None, return_state=True):
        """x (b, n, E), state (b, h, d, e) | None -> (b, n, E), state | None."""
        return self._residual(
            x, lambda h: self.retention.forward_chunkwise(h, start, state, return_state)
        )

    def forward_block_states(self, x, block_size, start=0, state=None):
        """x (b, t*j, E), state (b, h, d, e) | None -> (b, t*j, E), states (b, t, h, d, e)."""
        return self._residual(
            x, lambda h: self.retention.forward_block_states(h, block_size, start, state)
        )

    def forward_recurrent(self, x, position, state):
        """x (b, E) one token, state (b, h, d, e) | None -> (b, E), state."""
        return self._residual(x, lambda h: self.retention.forward_recurrent(h, position, state))


class RetNetDecoder(nn.Module):
    """`num_layers` deep copies of `layer`; heads read the last layer's output (no final LN)."""

    def __init__(self, layer: RetNetLayer, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def _states(self, states: LayerStates | None) -> LayerStates:
        if states is None:
            return [None] * len(self.layers)
        if len(states) != len(self.layers):
            raise ValueError(f"got {len(states)} layer states for {len(self.layers)} layers")
        return list(states)

    def forward_parallel(self, x: Tensor, start: int | Tensor = 0) -> Tensor:
        """x (b, n, E) from an empty state -> (b, n, E)."""
        for layer in self.layers:
            x = layer.forward_parallel(x, start)
        return x

    def forward_chunkwise(
        self,
        x: Tensor,
        start: int | Tensor = 0,
        states: LayerStates | None = None,
        return_state: bool = True,
    ) -> tuple[Tensor, LayerStates | None]:
        """x (b, n, E) at positions start.. -> (b, n, E), per-layer states after the chunk."""
        new_states = []
        for layer, state in zip(self.layers, self._states(states)):
            x, state = layer.forward_chunkwise(x, start, state, return_state)
            new_states.append(state)
        return x, (new_states if return_state else None)

    def forward_block_states(
        self,
        x: Tensor,
        block_size: int,
        start: int | Tensor = 0,
        states: LayerStates | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """x (b, t*j, E) -> (b, t*j, E), per-layer states after every block, each (b, t, h, d, e)."""
        block_states = []
        for layer, state in zip(self.layers, self._states(states)):
            x, per_block = layer.forward_block_states(x, block_size, start, state)
            block_states.append(per_block)
        return x, block_states

    def forward_recurrent(
        self, x: Tensor, position: int | Tensor, states: LayerStates | None
    ) -> tuple[Tensor, LayerStates]:
        """One token x (b, E) at `position` -> (b, E), per-layer states."""
        new_states = []
        for layer, state in zip(self.layers, self._states(states)):
            x, state = layer.forward_recurrent(x, position, state)
            new_states.append(state)
        return x, new_states


def build_retnet(
    embed_dim: int, num_heads: int, ffn_dim: int, dropout: float, num_layers: int
) -> RetNetDecoder:
    return RetNetDecoder(RetNetLayer(embed_dim, num_heads, ffn_dim, dropout), num_layers)
