"""IRIS's world model (docs/protocol.md#iris): a GPT over blocks [z_t^0 .. z_t^{K-1}, a_t].

Notation: b batch, t blocks (time steps), K observation tokens per frame (16), j = K + 1
tokens per block, n tokens of a stream, E width (256), V tokenizer vocabulary (512), A actions.

Layout (IRIS's): token (t, i) sits at position j*t + i; observation slots hold token ids
0..V-1 and are embedded with the observation table, the action slot holds the raw action
id 0..A-1 and is embedded with the action table; a learned absolute position embedding over
max_blocks * j positions is added. The output at position p predicts the token at p + 1
when that is an observation token (head_obs: obs slots 0..K-2 and the action slot); the
output at the action slot of block t also predicts reward r_t (3 classes, sign(r) + 1) and
end d_t (head_reward, head_end). Loss on every block: cross-entropy of every observation
token but the first of the segment, of every reward and end, padding ignored; total = sum.

Interface (the same as REM's world models, rem.models.world_model / world_model_nopop):

    wm = IrisWorldModel(IrisWorldModelConfig(), tokenizer_cfg, num_actions)
    loss, metrics = wm.compute_loss(batch, tokenizer)  # loss, loss_obs, loss_reward, loss_end
    outputs = wm(wm.block_tokens(obs_tokens, actions))  # (b, t, j) -> (b, t*j, E)
    state = wm.imagine_reset(context_tokens, None)      # (b, 1, K) the last real frame
    logits_reward, logits_end, state = wm.imagine_act(state, actions, tokenizer)
    next_tokens, state = wm.imagine_frame(state, tokenizer, sample)  # K calls, KV cache

driven by rem.models.imagination.ImaginationEnv. Imagination (IRIS's WorldModelEnv): the
context tokens and each action are fed through the KV cache; the action's output gives the
reward/end logits and the first next-frame token's logits; the next frame is then generated
token by token, each sampled token fed back. When the next tokens would overflow the
position table (max_blocks * j), the cache restarts from the current frame alone
(positions from 0 again), as IRIS's `refresh_keys_values_with_initial_obs_tokens`; at
horizon 20 from one real frame this never happens. The cache is updated in place: a state
is used up by the next primitive call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rem.models.iris.config import IrisWorldModelConfig
from rem.models.iris.transformer import GPT, KVCache
from rem.models.precision import at_least_fp32

IGNORE = -100  # cross-entropy ignore index (padding, the segment's first token)
Sampler = Callable[[Tensor], Tensor]  # logits (b, V) -> token ids (b,)


class TokenLayout(Protocol):
    """What the world model needs of a tokenizer config (IrisTokenizerConfig or REM's)."""

    vocab_size: int

    @property
    def tokens_per_frame(self) -> int: ...


@dataclass
class IrisImaginationState:
    """One batch of imagined rollouts (all rows in lockstep).

    cache: the KV cache (updated in place); position: tokens cached = position of the next
    one; pending: (b, n) context tokens not fed yet (only right after a reset); frame: (b, K)
    the current frame's tokens (a cache refresh restarts from them); action: (b,) the last
    fed action or None; next_logits: (b, V) logits of the next frame's first token.
    """

    cache: KVCache
    position: int
    pending: Tensor
    frame: Tensor
    action: Tensor | None = None
    next_logits: Tensor | None = None


def _mlp(embed_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, out_dim))


def init_weights(module: nn.Module) -> None:
    """IRIS's (minGPT's) init: Linear and Embedding weights N(0, 0.02), Linear biases 0,
    LayerNorm weight 1 and bias 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class IrisWorldModel(nn.Module):
    def __init__(
        self, cfg: IrisWorldModelConfig, tokenizer_cfg: TokenLayout, num_actions: int
    ) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.cfg = cfg
        self.num_actions = num_actions
        self.obs_vocab = tokenizer_cfg.vocab_size
        self.tokens_per_frame = tokenizer_cfg.tokens_per_frame
        self.tokens_per_block = self.tokens_per_frame + 1
        self.max_tokens = cfg.max_blocks * self.tokens_per_block
        self.transformer = GPT(cfg, self.tokens_per_block)
        self.pos_emb = nn.Embedding(self.max_tokens, cfg.embed_dim)
        self.act_emb = nn.Embedding(num_actions, cfg.embed_dim)
        self.obs_emb = nn.Embedding(self.obs_vocab, cfg.embed_dim)
        self.head_obs = _mlp(cfg.embed_dim, self.obs_vocab)
        self.head_reward = _mlp(cfg.embed_dim, 3)  # classes sign(r) + 1
        self.head_end = _mlp(cfg.embed_dim, 2)
        self.apply(init_weights)

    # ------------------------------------------------------------------ tokens and streams

    def block_tokens(self, obs_tokens: Tensor, actions: Tensor) -> Tensor:
        """obs_tokens (b, t, K), actions (b, t) -> blocks (b, t, j) = [z_t, a_t] (raw ids)."""
        return torch.cat([obs_tokens.long(), actions.long()[..., None]], dim=-1)

    def embed(self, tokens: Tensor, start: int = 0) -> Tensor:
        """tokens (b, n) at positions start..start+n-1 -> embeddings + positions (b, n, E).

        The slot of each position (p mod j) picks the table: the action table at slot K,
        the observation table elsewhere."""
        n = tokens.shape[1]
        if start + n > self.max_tokens:
            raise ValueError(
                f"positions {start}..{start + n - 1} exceed the world model's "
                f"{self.max_tokens} ({self.cfg.max_blocks} blocks of {self.tokens_per_block})"
            )
        positions = torch.arange(start, start + n, device=tokens.device)
        is_action = (positions % self.tokens_per_block == self.tokens_per_frame)[None, :, None]
        obs = self.obs_emb(tokens.clamp(0, self.obs_vocab - 1))
        act = self.act_emb(tokens.clamp(0, self.num_actions - 1))
        return torch.where(is_action, act, obs) + self.pos_emb(positions)

    def stream(self, tokens: Tensor, cache: KVCache | None = None) -> Tensor:
        """tokens (b, n) continuing the cache (from position 0 without one) -> outputs (b, n, E)."""
        start = 0 if cache is None else cache.size
        return self.transformer(self.embed(tokens, start), cache)

    def forward(self, tokens: Tensor, tokenizer: nn.Module | None = None) -> Tensor:
        """Teacher-forced pass: tokens (b, t, j) -> outputs (b, t*j, E); output p is read by
        the heads for token p + 1. `tokenizer` is unused (IRIS has its own tables)."""
        del tokenizer
        if tokens.shape[-1] != self.tokens_per_block:
            raise ValueError(
                f"expected {self.tokens_per_block} tokens per block, got {tokens.shape[-1]}"
            )
        return self.stream(rearrange(tokens, "b t j -> b (t j)"))

    def heads(self, outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """outputs (..., E) -> logits obs (..., V), reward (..., 3), end (..., 2)."""
        return self.head_obs(outputs), self.head_reward(outputs), self.head_end(outputs)

    def encode_observations(self, observations: Tensor, tokenizer: nn.Module) -> Tensor:
        """observations float (b, t, 3, 64, 64) in [0, 1] -> tokens long (b, t, K), no grad."""
        b = observations.shape[0]
        with torch.no_grad():
            tokens = tokenizer.encode(rearrange(observations, "b t c h w -> (b t) c h w")).tokens
        if tokens.shape[-1] != self.tokens_per_frame:
            raise ValueError(
                f"tokenizer gives {tokens.shape[-1]} tokens per frame but the world model was "
                f"built for {self.tokens_per_frame}; build both from the same config"
            )
        return rearrange(tokens, "(b t) k -> b t k", b=b)

    # ------------------------------------------------------------------ loss

    def logits(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced logits of every block: tokens (b, t, j) -> obs (b, t*K - 1, V) for
        the observation tokens 1..t*K-1 of the segment in order, reward (b, t, 3), end (b, t, 2).
        """
        k = self.tokens_per_frame
        out = rearrange(self(tokens), "b (t j) e -> b t j e", j=self.tokens_per_block)
        # outputs that predict an observation token: obs slots 0..K-2 (-> obs 1..K-1 of the
        # same frame) and the action slot (-> obs 0 of the next frame); slot K-1 predicts an
        # action and is not read.
        predictors = torch.cat([out[:, :, : k - 1], out[:, :, k:]], dim=2)
        predictors = rearrange(predictors, "b t k e -> b (t k) e")[:, :-1]
        last = out[:, :, k]
        return self.head_obs(predictors), self.head_reward(last), self.head_end(last)

    def compute_loss(
        self, batch: dict[str, Tensor], tokenizer: nn.Module, metrics_as_tensors: bool = False
    ) -> tuple[Tensor, dict]:
        """IRIS's losses on a float batch (b, t), t <= max_blocks: observations, actions,
        rewards, ends, mask_padding. Returns (loss, metrics {loss, loss_obs, loss_reward,
        loss_end}) as floats, or detached 0-d tensors with `metrics_as_tensors` (no sync)."""
        missing = {"observations", "actions", "rewards", "ends", "mask_padding"} - set(batch)
        if missing:
            raise KeyError(f"world-model batch lacks {sorted(missing)} (see rem.data.sampler)")
        if batch["actions"].shape[1] > self.cfg.max_blocks:
            raise ValueError(
                f"world-model segments hold at most max_blocks={self.cfg.max_blocks} steps, "
                f"got {batch['actions'].shape[1]}"
            )
        obs_tokens = self.encode_observations(batch["observations"], tokenizer)
        logits_obs, logits_reward, logits_end = self.logits(
            self.block_tokens(obs_tokens, batch["actions"])
        )
        pad = ~batch["mask_padding"].bool()
        labels_obs = obs_tokens.masked_fill(pad[..., None], IGNORE)
        labels_obs = rearrange(labels_obs, "b t k -> b (t k)")[:, 1:]
        labels_reward = (torch.sign(batch["rewards"]) + 1).long().masked_fill(pad, IGNORE)
        labels_end = batch["ends"].long().masked_fill(pad, IGNORE)
        return _losses(
            (logits_obs, labels_obs),
            (logits_reward, labels_reward),
            (logits_end, labels_end),
            metrics_as_tensors,
        )

    # ------------------------------------------------------------------ imagination

    def imagine_reset(
        self, context_tokens: Tensor, context_action: Tensor | None = None
    ) -> IrisImaginationState:
        """context_tokens long (b, c, K) real frames; context_action None for c == 1 (IRIS),
        (b,) the action between the two frames for c == 2. Nothing is fed yet: the context
        goes through the cache together with the first action."""
        b, c = context_tokens.shape[:2]
        if context_tokens.dim() != 3 or context_tokens.shape[2] != self.tokens_per_frame:
            raise ValueError(
                f"context_tokens must be (b, c, {self.tokens_per_frame}), got "
                f"{tuple(context_tokens.shape)}"
            )
        if c not in (1, 2) or (context_action is None) != (c == 1):
            raise ValueError(
                "the context is one frame without an action (IRIS) or two frames with the "
                f"action between them; got {c} frame(s) and action "
                f"{None if context_action is None else tuple(context_action.shape)}"
            )
        pieces = [context_tokens[:, 0].long()]
        if c == 2:
            if context_action.shape != (b,):
                raise ValueError(
                    f"context_action must be ({b},), got {tuple(context_action.shape)}"
                )
            pieces += [context_action.long()[:, None], context_tokens[:, 1].long()]
        pending = torch.cat(pieces, dim=1)
        return IrisImaginationState(
            self.transformer.empty_cache(), 0, pending, context_tokens[:, -1].long()
        )

    def _feed_action(self, state: IrisImaginationState, actions: Tensor, refresh: bool) -> Tensor:
        """Feed pending + action (from the current frame alone if `refresh`, positions from 0)
        -> the action's output (b, E); updates `state` in place."""
        tokens = torch.cat([state.pending, actions.long()[:, None]], dim=1)
        if refresh:
            state.cache = self.transformer.empty_cache()
            tokens = torch.cat([state.frame, actions.long()[:, None]], dim=1)
        out = self.stream(tokens, state.cache)[:, -1]
        state.position = state.cache.size
        state.pending = tokens[:, :0]
        state.action = actions.long()
        state.next_logits = self.head_obs(out)
        return out

    def imagine_act(
        self, state: IrisImaginationState, actions: Tensor, tokenizer: nn.Module | None = None
    ) -> tuple[Tensor, Tensor, IrisImaginationState]:
        """actions long (b,) -> reward logits (b, 3), end logits (b, 2), the state (advanced).

        The action's output also gives the next frame's first-token logits (`next_logits`)."""
        del tokenizer
        if actions.shape != (state.frame.shape[0],):
            raise ValueError(
                f"actions must be ({state.frame.shape[0]},), got {tuple(actions.shape)}"
            )
        if state.next_logits is not None:
            raise RuntimeError("imagine_act twice in a row: generate the frame first")
        needed = state.pending.shape[1] + 1
        out = self._feed_action(state, actions, state.position + needed > self.max_tokens)
        return self.head_reward(out), self.head_end(out), state

    def imagine_frame(
        self, state: IrisImaginationState, tokenizer: nn.Module | None, sample: Sampler
    ) -> tuple[Tensor, IrisImaginationState]:
        """Generate the next frame token by token: K sampled tokens, each fed back through the
        cache (the last one too, as IRIS). `sample` maps logits (b, V) to tokens (b,).
        -> tokens (b, K), the state (advanced)."""
        del tokenizer
        if state.next_logits is None or state.action is None:
            raise RuntimeError("imagine_frame needs an action step first")
        if state.position + self.tokens_per_frame > self.max_tokens:
            # IRIS refreshes before the action: redo it from the current frame alone
            self._feed_action(state, state.action, refresh=True)
        logits, tokens = state.next_logits, []
        for i in range(self.tokens_per_frame):
            token = sample(logits)
            tokens.append(token)
            out = self.stream(token[:, None], state.cache)[:, -1]
            if i < self.tokens_per_frame - 1:
                logits = self.head_obs(out)
        state.frame = torch.stack(tokens, dim=1)
        state.position = state.cache.size
        state.next_logits = None
        return state.frame, state


def _losses(
    obs: tuple[Tensor, Tensor],
    reward: tuple[Tensor, Tensor],
    end: tuple[Tensor, Tensor],
    metrics_as_tensors: bool,
) -> tuple[Tensor, dict]:
    """(logits (..., C), labels (...)) per term -> total (sum) and metrics; each term a CE
    mean over its non-IGNORE labels (IRIS's `F.cross_entropy` defaults)."""

    def ce(logits: Tensor, labels: Tensor) -> Tensor:
        flat = at_least_fp32(logits).reshape(-1, logits.shape[-1])
        return F.cross_entropy(flat, labels.reshape(-1), ignore_index=IGNORE)

    loss_obs, loss_reward, loss_end = ce(*obs), ce(*reward), ce(*end)
    loss = loss_obs + loss_reward + loss_end
    names = ("loss", "loss_obs", "loss_reward", "loss_end")
    values = torch.stack([loss, loss_obs, loss_reward, loss_end]).detach()
    if metrics_as_tensors:
        return loss, dict(zip(names, values.unbind()))
    return loss, dict(zip(names, values.tolist()))  # the one host-device sync
