"""Multi-scale retention (docs/protocol.md#world-model), yar-style, in four equivalent computation forms.

Notation: b batch, h heads, n tokens, d head dim (keys), e head dim (values, = d),
t blocks, j token index inside a block.

Retention of one head with decay gamma:

    o_n = sum_{m <= n} gamma^(n - m) (q_n . k_m) v_m
    S_n = gamma S_{n-1} + k_n^T v_n,   o_n = q_n S_n          (state S is d x e per head)

Forms (all agree to float tolerance; `tests/test_retention.py` checks it):
- parallel: a masked decay matrix over the whole sequence;
- recurrent: one token at a time from the state;
- chunkwise: parallel inside a chunk plus the state carried in from the previous chunk;
- block states: chunkwise over a chunk made of whole blocks that also returns the state after
  every block (what POP needs to predict each block's successor in parallel).

Positions are absolute offsets passed in by the caller (segment-relative in the world model):
q and k at position p are rotated by exp(i p theta_i) over interleaved pairs (2i, 2i+1), with
theta_i = 10000^(-i / (d/2 - 1)) (yar's scheme, no xPos length scaling).

The retention arithmetic (rotation, decays, state accumulation) runs in at least float32 with
autocast off: bf16 powers of gamma near 1 and long bf16 sums lose too much precision. The
projections around it stay under autocast. A module converted with `.double()` (its gamma and
theta buffers then float64) runs all of it in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor, nn

from rem.models.precision import at_least_fp32, wide_dtype

# ----------------------------------------------------------------------------- constants


def decay_gammas(num_heads: int) -> Tensor:
    """yar's per-head decays: gamma_h = 1 - exp(linspace(ln 1/32, ln 1/512, H)). -> (h,) fp32."""
    x = torch.linspace(math.log(1 / 32), math.log(1 / 512), num_heads, dtype=torch.float64)
    return (1 - torch.exp(x)).float()


def rotary_thetas(head_dim: int) -> Tensor:
    """theta_i = 10000^(-i / (d/2 - 1)), i = 0..d/2-1. -> (d/2,) fp32."""
    if head_dim % 2 or head_dim < 4:
        raise ValueError(f"head dim must be even and >= 4 for rotary positions, got {head_dim}")
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    return (10000.0 ** (-i / (head_dim // 2 - 1))).float()


def positions(start: int | Tensor, n: int, device: torch.device) -> Tensor:
    """Absolute positions of n consecutive tokens from `start`.

    start int -> (n,); start long (b,) (one offset per sequence) -> (b, n).
    """
    offsets = torch.arange(n, device=device)
    if isinstance(start, Tensor):
        return start.to(device)[:, None] + offsets
    return offsets + start


def apply_rotary(x: Tensor, pos: Tensor, thetas: Tensor) -> Tensor:
    """Rotate interleaved pairs of x by angle pos * theta.

    x (b, h, n, d); pos (n,) or (b, n); thetas (d/2,) -> (b, h, n, d), float32 (float64 if
    x or thetas is).
    """
    dtype = wide_dtype(x.dtype, thetas.dtype)
    angles = pos.to(dtype)[..., None] * thetas.to(dtype)  # (n, d/2) or (b, n, d/2)
    if angles.dim() == 3:
        angles = angles[:, None]  # broadcast over heads
    cos, sin = angles.cos(), angles.sin()
    pairs = rearrange(x.to(dtype), "... (d two) -> ... d two", two=2)
    re, im = pairs.unbind(-1)
    rotated = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1)
    return rearrange(rotated, "... d two -> ... (d two)")


def _gamma_pow(gamma: Tensor, exponent: Tensor) -> Tensor:
    """gamma^exponent for gamma (h,) and any exponent tensor -> (h, *exponent.shape)."""
    log_gamma = at_least_fp32(gamma).log().reshape(-1, *([1] * exponent.dim()))
    return torch.exp(log_gamma * exponent.to(log_gamma.dtype))


def decay_matrix(gamma: Tensor, n: int) -> Tensor:
    """Causal decay mask D[h, i, j] = gamma_h^(i - j) for i >= j else 0. -> (h, n, n)."""
    idx = torch.arange(n, device=gamma.device)
    diff = idx[:, None] - idx[None, :]
    return _gamma_pow(gamma, diff.clamp(min=0)) * (diff >= 0)


# ----------------------------------------------------------------------------- core forms
# q, k, v below are already rotated and k already scaled; all float32 (or all float64).


def retention_parallel(q: Tensor, k: Tensor, v: Tensor, gamma: Tensor) -> Tensor:
    """Parallel form. q, k, v (b, h, n, d); gamma (h,) -> o (b, h, n, e)."""
    scores = einsum(q, k, "b h n d, b h m d -> b h n m") * decay_matrix(gamma, q.shape[2])
    return einsum(scores, v, "b h n m, b h m e -> b h n e")


def retention_recurrent(
    q: Tensor, k: Tensor, v: Tensor, gamma: Tensor, state: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One token. q, k, v (b, h, d); state (b, h, d, e) or None (= zeros) -> o (b, h, e), state."""
    kv = einsum(k, v, "b h d, b h e -> b h d e")
    state = kv if state is None else at_least_fp32(gamma)[:, None, None] * state + kv
    return einsum(q, state, "b h d, b h d e -> b h e"), state


def retention_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    gamma: Tensor,
    state: Tensor | None,
    return_state: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """One chunk of n tokens from the state before it.

    q, k, v (b, h, n, d); state (b, h, d, e) or None (= zeros)
    -> o (b, h, n, e), new state (b, h, d, e) (None when return_state is False).
    o_n = inner_n + gamma^(n+1) q_n S_prev;  S_new = gamma^n S_prev + sum_m gamma^(n-1-m) k_m^T v_m.
    """
    n = q.shape[2]
    idx = torch.arange(n, device=q.device)
    o = retention_parallel(q, k, v, gamma)
    if state is not None:
        cross = einsum(q, state, "b h n d, b h d e -> b h n e")
        o = o + cross * _gamma_pow(gamma, idx + 1)[..., None]
    if not return_state:
        return o, None
    weights = _gamma_pow(gamma, n - 1 - idx)  # (h, n)
    new_state = einsum(k * weights[..., None], v, "b h n d, b h n e -> b h d e")
    if state is not None:
        new_state = new_state + _gamma_pow(gamma, torch.tensor(n))[:, None, None] * state
    return o, new_state


def block_states(
    k: Tensor, v: Tensor, gamma: Tensor, state: Tensor | None, block_size: int
) -> Tensor:
    """States after every block of a chunk made of whole blocks (POP).

    k, v (b, h, t*j, d) with j = block_size; state (b, h, d, e) before the chunk or None
    -> states (b, t, h, d, e): S_t = gamma^j S_{t-1} + sum_i gamma^(j-1-i) k_{t,i}^T v_{t,i},
    computed for all t at once as a decay-weighted sum over blocks (no loop).
    """
    n = k.shape[2]
    if n % block_size:
        raise ValueError(f"chunk of {n} tokens is not a whole number of {block_size}-token blocks")
    num_blocks = n // block_size
    kb = rearrange(k, "b h (t j) d -> b h t j d", j=block_size)
    vb = rearrange(v, "b h (t j) e -> b h t j e", j=block_size)
    weights = _gamma_pow(gamma, block_size - 1 - torch.arange(block_size, device=k.device))
    per_block = einsum(kb * weights[:, None, :, None], vb, "b h t j d, b h t j e -> b h t d e")
    block_gamma = _gamma_pow(gamma, torch.tensor(block_size))  # gamma^j, (h,)
    states = einsum(
        decay_matrix(block_gamma, num_blocks), per_block, "h t s, b h s d e -> b h t d e"
    )
    if state is not None:
        carry = _gamma_pow(block_gamma, torch.arange(1, num_blocks + 1, device=k.device))
        states = states + carry[None, :, :, None, None] * state[:, :, None]
    return rearrange(states, "b h t d e -> b t h d e")


# ----------------------------------------------------------------------------- module


class MultiScaleRetention(nn.Module):
    """MSR: q/k/v/g/out projections, rotary positions, per-head decays, GroupNorm, swish gate.

    y = W_out( GroupNorm_heads(dropout(retention(x))) * silu(W_g x) ); GroupNorm has one group
    per head, eps 1e-6, no affine (computed as a LayerNorm over each head's channels, which is
    the same thing). Weights xavier-normal, biases zero.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.g_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.g_proj, self.out_proj):
            nn.init.xavier_normal_(linear.weight)
            nn.init.zeros_(linear.bias)
        # Deterministic constants: not saved in checkpoints.
        self.register_buffer("gamma", decay_gammas(num_heads), persistent=False)
        self.register_buffer("thetas", rotary_thetas(self.head_dim), persistent=False)

    def _qkv(self, x: Tensor, start: int | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (b, n, E) -> q, k, v (b, h, n, d) float32 (float64 in a float64 module); q, k
        rotated, k scaled by 1/sqrt(d)."""
        pos = positions(start, x.shape[1], x.device)
        heads = "b n (h d) -> b h n d"
        q = apply_rotary(rearrange(self.q_proj(x), heads, h=self.num_heads), pos, self.thetas)
        k = apply_rotary(rearrange(self.k_proj(x), heads, h=self.num_heads), pos, self.thetas)
        v = rearrange(self.v_proj(x), heads, h=self.num_heads).to(q.dtype)
        return q, k / math.sqrt(self.head_dim), v

    def _output(self, o: Tensor, x: Tensor) -> Tensor:
        """o (b, h, n, e) float32 or float64, x (b, n, E) the MSR input -> (b, n, E)."""
        o = F.dropout(o, p=self.dropout, training=self.training)
        o = F.layer_norm(o, (self.head_dim,), eps=1e-6)  # == GroupNorm(h groups, no affine)
        o = rearrange(o, "b h n e -> b n (h e)")
        return self.out_proj((o * F.silu(self.g_proj(x))).to(x.dtype))

    def _fp32(self, x: Tensor) -> torch.autocast:
        return torch.autocast(device_type=x.device.type, enabled=False)

    def forward_parallel(self, x: Tensor, start: int | Tensor = 0) -> Tensor:
        """x (b, n, E) -> (b, n, E), the whole sequence at once from an empty state."""
        q, k, v = self._qkv(x, start)
        with self._fp32(x):
            o = retention_parallel(q, k, v, self.gamma)
        return self._output(o, x)

    def forward_chunkwise(
        self,
        x: Tensor,
        start: int | Tensor = 0,
        state: Tensor | None = None,
        return_state: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """x (b, n, E), state (b, h, d, e) or None -> y (b, n, E), state after the chunk."""
        q, k, v = self._qkv(x, start)
        with self._fp32(x):
            o, state = retention_chunkwise(q, k, v, self.gamma, state, return_state)
        return self._output(o, x), state

    def forward_block_states(
        self, x: Tensor, block_size: int, start: int | Tensor = 0, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x (b, t*j, E), state (b, h, d, e) or None -> y (b, t*j, E), states (b, t, h, d, e)."""
        q, k, v = self._qkv(x, start)
        with self._fp32(x):
            o, _ = retention_chunkwise(q, k, v, self.gamma, state, return_state=False)
            states = block_states(k, v, self.gamma, state, block_size)
        return self._output(o, x), states

    def forward_recurrent(
        self, x: Tensor, position: int | Tensor, state: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """One token: x (b, E) at `position`, state (b, h, d, e) or None -> y (b, E), state."""
        q, k, v = self._qkv(x[:, None], position)
        with self._fp32(x):
            o, state = retention_recurrent(q[:, :, 0], k[:, :, 0], v[:, :, 0], self.gamma, state)
        return self._output(o[:, :, None], x[:, None])[:, 0], state
