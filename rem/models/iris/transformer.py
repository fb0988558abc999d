"""IRIS's GPT (minGPT-style, pre-LayerNorm) with a key/value cache (docs/protocol.md#iris).

    gpt = GPT(IrisWorldModelConfig(), tokens_per_block=17)
    y = gpt(x)                              # x (b, n, E) embeddings -> (b, n, E), causal
    cache = gpt.empty_cache(b)              # keys/values of the tokens fed so far
    y1 = gpt(x[:, :5], cache)               # positions 0..4, cached
    y2 = gpt(x[:, 5:], cache)               # positions 5..n-1 attend to the cached ones
    # torch.cat([y1, y2], 1) == y (in eval mode, up to float rounding)

Block: x + attn(LN(x)), then x + mlp(LN(x)) with mlp = Linear(E, 4E) -> GELU -> Linear(4E, E)
-> dropout; attention: separate q, k, v Linear layers, softmax(q k^T / sqrt(d)) with dropout
on the probabilities, output projection then dropout. Embedding dropout is applied to the
input embeddings (the caller adds the position embeddings first); a final LayerNorm.
Parameter names follow IRIS's (`blocks.0.attn.query.weight`, `blocks.0.mlp.0.weight`, `ln_f`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rem.models.iris.config import IrisWorldModelConfig


class KVCache:
    """Keys and values of every layer for the tokens fed so far, in buffers of `max_tokens`
    positions allocated at the first write (in the dtype of the keys, e.g. bf16 under
    autocast). `size` is the number of cached tokens, i.e. the position of the next one.
    Updated in place; only used without gradient (imagination)."""

    def __init__(self, num_layers: int, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.size = 0
        self._keys: list[Tensor | None] = [None] * num_layers
        self._values: list[Tensor | None] = [None] * num_layers

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """k, v (b, h, n, d) of the new tokens -> all keys and values (b, h, size + n, d)."""
        n = k.shape[2]
        end = self.size + n
        if end > self.max_tokens:
            raise ValueError(
                f"the KV cache holds {self.max_tokens} tokens; {self.size} cached + {n} new "
                "do not fit (world_model.max_blocks x tokens per block)"
            )
        if self._keys[layer] is None:
            shape = (*k.shape[:2], self.max_tokens, k.shape[3])
            self._keys[layer] = k.new_empty(shape)
            self._values[layer] = v.new_empty(shape)
        keys, values = self._keys[layer], self._values[layer]
        keys[:, :, self.size : end] = k
        values[:, :, self.size : end] = v
        return keys[:, :, :end], values[:, :, :end]

    def advance(self, n: int) -> None:
        """Mark n more tokens as cached (after every layer has written them)."""
        self.size += n


class SelfAttention(nn.Module):
    def __init__(self, cfg: IrisWorldModelConfig, tokens_per_block: int) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.block_causal = cfg.attention == "block_causal"
        self.tokens_per_block = tokens_per_block
        self.attn_dropout = cfg.attn_dropout
        self.key = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.query = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.value = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.resid_drop = nn.Dropout(cfg.resid_dropout)

    def _mask(self, start: int, n: int, device: torch.device) -> Tensor:
        """(n, start + n) bool, True = may attend: query at position start + i sees keys at
        positions <= start + i (and, block-causal, every key of its own block)."""
        q = start + torch.arange(n, device=device)[:, None]
        k = torch.arange(start + n, device=device)[None, :]
        allowed = k <= q
        if self.block_causal:
            allowed = allowed | (k // self.tokens_per_block == q // self.tokens_per_block)
        return allowed

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        """x (b, n, E) at positions start..start+n-1 (start = cache.size or 0) -> (b, n, E)."""
        heads = "b n (h d) -> b h n d"
        q = rearrange(self.query(x), heads, h=self.num_heads)
        k = rearrange(self.key(x), heads, h=self.num_heads)
        v = rearrange(self.value(x), heads, h=self.num_heads)
        start = 0
        if cache is not None:
            start = cache.size
            k, v = cache.extend(layer, k, v)
        dropout = self.attn_dropout if self.training else 0.0
        if start == 0 and not self.block_causal:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            mask = self._mask(start, x.shape[1], x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.resid_drop(self.proj(rearrange(y, "b h n d -> b n (h d)")))


class Block(nn.Module):
    def __init__(self, cfg: IrisWorldModelConfig, tokens_per_block: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.embed_dim)
        self.ln2 = nn.LayerNorm(cfg.embed_dim)
        self.attn = SelfAttention(cfg, tokens_per_block)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.embed_dim, 4 * cfg.embed_dim),
            nn.GELU(),
            nn.Linear(4 * cfg.embed_dim, cfg.embed_dim),
            nn.Dropout(cfg.resid_dropout),
        )

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Embedding dropout -> num_layers blocks -> final LayerNorm; (b, n, E) -> (b, n, E)."""

    def __init__(self, cfg: IrisWorldModelConfig, tokens_per_block: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.max_tokens = cfg.max_blocks * tokens_per_block
        self.drop = nn.Dropout(cfg.embed_dropout)
        self.blocks = nn.ModuleList(Block(cfg, tokens_per_block) for _ in range(cfg.num_layers))
        self.ln_f = nn.LayerNorm(cfg.embed_dim)

    def empty_cache(self) -> KVCache:
        return KVCache(len(self.blocks), self.max_tokens)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        """x (b, n, E) embeddings (positions included) -> (b, n, E); with `cache`, x sits at
        positions cache.size.. and is appended to the cache."""
        h = self.drop(x)
        for layer, block in enumerate(self.blocks):
            h = block(h, cache, layer)
        if cache is not None:
            cache.advance(x.shape[1])
        return self.ln_f(h)
