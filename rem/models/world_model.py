"""POP-RetNet world model (docs/protocol.md#world-model).

Notation: b batch, t blocks (time steps), j = K+1 tokens per block, K observation tokens per
frame (from the tokenizer: 64 for 8x8, 16 for 4x4), E embedding width, V tokenizer vocabulary,
A number of actions.

Token layout: block t = [z_t^0 .. z_t^{K-1}, a_t]; observation ids 0..V-1, action id V+a,
table of V+A+1 rows (the last id is an unused padding id). Positions are segment-relative:
token (t, i) sits at position j*t + i.

POP: besides the real token stream, every block t gets K learned *prediction tokens*
placed at block t's own positions and run from the real stream's state after block t-1; their
outputs u_{t,i} predict z_t^i, so a whole frame is predicted in one parallel pass. The output
at the action token a_t (real stream) predicts reward r_t and end d_t.

Imagination (docs/protocol.md#imagination) is exposed as three primitives shared with the no-POP model and driven by
`rem.models.imagination.ImaginationEnv`: `imagine_reset`, `imagine_act`, `imagine_frame`.

Host-device syncs: none inside `forward`; `compute_loss` converts its metrics to floats with a
single `.tolist()` at its very end (pass `metrics_as_tensors=True` to skip even that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from rem.config import TokenizerConfig, WorldModelConfig, check_shared_embeddings
from rem.models.precision import at_least_fp32
from rem.models.retnet import LayerStates, build_retnet

IGNORE = -100  # cross-entropy ignore index for context blocks and padding
Sampler = Callable[[Tensor], Tensor]  # logits (..., V) -> token ids (...)


@dataclass
class ImaginationState:
    """Recurrent state of one batch of imagined rollouts (all rows advance in lockstep).

    states: per-layer RetNet states (b, h, d, e), None = empty; position: absolute position of
    the next token; pending: tokens (b, n) not yet fed to the RetNet; next_logits: (b, V)
    next-token logits left by the last fed token (no-POP only).
    """

    states: LayerStates | None
    position: int
    pending: Tensor
    next_logits: Tensor | None = None


def _mlp(embed_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, out_dim))


class TokenWorldModel(nn.Module):
    """What the POP and no-POP world models share: token layout, embeddings, heads, losses."""

    def __init__(
        self, cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int
    ) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        check_shared_embeddings(tokenizer_cfg, cfg)
        if cfg.context_length < 1:
            raise ValueError(f"world_model.context_length must be >= 1, got {cfg.context_length}")
        if cfg.blocks_per_chunk < 1:
            raise ValueError(
                f"world_model.blocks_per_chunk must be >= 1, got {cfg.blocks_per_chunk}"
            )
        self.cfg = cfg
        self.num_actions = num_actions
        self.obs_vocab = tokenizer_cfg.vocab_size
        self.tokens_per_frame = tokenizer_cfg.tokens_per_frame  # derived, never set by hand
        self.tokens_per_block = self.tokens_per_frame + 1
        # the no-POP model may switch this off (docs/protocol.md#changed)
        self.train_action_embeddings = True
        self.embedding = nn.Embedding(self.obs_vocab + num_actions + 1, cfg.embed_dim)
        self.retnet = build_retnet(
            cfg.embed_dim, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.num_layers
        )
        self.head_obs = _mlp(cfg.embed_dim, self.obs_vocab)
        self.head_reward = _mlp(cfg.embed_dim, 3)  # classes sign(r) + 1
        self.head_end = _mlp(cfg.embed_dim, 2)

    # ------------------------------------------------------------------ tokens and embeddings

    def action_tokens(self, actions: Tensor) -> Tensor:
        """actions long (...) -> WM token ids V + a (...)."""
        return actions.long() + self.obs_vocab

    def block_tokens(self, obs_tokens: Tensor, actions: Tensor) -> Tensor:
        """obs_tokens (b, t, K), actions (b, t) -> blocks (b, t, j) = [z_t, V + a_t]."""
        return torch.cat([obs_tokens, self.action_tokens(actions)[..., None]], dim=-1)

    def embed(self, tokens: Tensor, tokenizer: nn.Module | None) -> Tensor:
        """WM token ids (...) -> embeddings (..., E).

        Shared embeddings (default): observation ids use the tokenizer's codebook vectors,
        looked up without gradient (the WM never updates the codebook); actions use our table.
        """
        table = self.embedding(tokens)
        if not self.train_action_embeddings:
            table = table.detach()
        if not self.cfg.shared_embeddings:
            return table
        if tokenizer is None:
            raise ValueError(
                "world_model.shared_embeddings embeds observation tokens with the tokenizer's "
                "codebook: pass the tokenizer"
            )
        is_obs = tokens < self.obs_vocab
        with torch.no_grad():
            codes = tokenizer.embed_tokens(tokens.clamp(max=self.obs_vocab - 1)).to(table.dtype)
        return torch.where(is_obs[..., None], codes, table)

    def encode_observations(self, observations: Tensor, tokenizer: nn.Module) -> Tensor:
        """observations float (b, t, 3, 64, 64) in [0, 1] -> tokens long (b, t, K), no grad."""
        b = observations.shape[0]
        with torch.no_grad():
            frames = rearrange(observations, "b t c h w -> (b t) c h w")
            tokens = tokenizer.encode(frames).tokens
        if tokens.shape[-1] != self.tokens_per_frame:
            raise ValueError(
                f"tokenizer gives {tokens.shape[-1]} tokens per frame but the world model was "
                f"built for {self.tokens_per_frame}; build both from the same TokenizerConfig"
            )
        return rearrange(tokens, "(b t) k -> b t k", b=b)

    # ------------------------------------------------------------------ losses

    def _check_batch(self, batch: dict[str, Tensor]) -> None:
        missing = {"observations", "actions", "rewards", "ends", "mask_padding"} - set(batch)
        if missing:
            raise KeyError(f"world-model batch lacks {sorted(missing)} (see rem.data.sampler)")
        t = batch["actions"].shape[1]
        if t <= self.cfg.context_length:
            raise ValueError(
                f"world-model segments need more than context_length={self.cfg.context_length} "
                f"steps to have a loss, got {t}"
            )

    def _reward_end_targets(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """-> valid bool (b, t'), reward classes (b, t'), end labels (b, t') for t >= context."""
        ctx = self.cfg.context_length
        valid = batch["mask_padding"][:, ctx:].bool()
        rewards = (torch.sign(batch["rewards"][:, ctx:]) + 1).long().masked_fill(~valid, IGNORE)
        ends = batch["ends"][:, ctx:].long().masked_fill(~valid, IGNORE)
        return valid, rewards, ends

    def _total_loss(
        self,
        logits_obs: Tensor,
        target_obs: Tensor,
        logits_reward: Tensor,
        target_reward: Tensor,
        logits_end: Tensor,
        target_end: Tensor,
        metrics_as_tensors: bool,
    ) -> tuple[Tensor, dict]:
        """Each term is a CE mean over its valid (non-IGNORE) targets; total = sum (weights 1)."""

        def ce(logits: Tensor, target: Tensor) -> Tensor:
            flat = at_least_fp32(logits).reshape(-1, logits.shape[-1])
            return F.cross_entropy(flat, target.reshape(-1), ignore_index=IGNORE)

        loss_obs = ce(logits_obs, target_obs)
        loss_reward = ce(logits_reward, target_reward)
        loss_end = ce(logits_end, target_end)
        loss = loss_obs + loss_reward + loss_end
        names = ("loss", "loss_obs", "loss_reward", "loss_end")
        values = torch.stack([loss, loss_obs, loss_reward, loss_end]).detach()
        if metrics_as_tensors:
            return loss, dict(zip(names, values.unbind()))
        return loss, dict(zip(names, values.tolist()))  # the one host-device sync

    def heads(self, outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """outputs (..., E) -> logits obs (..., V), reward (..., 3), end (..., 2)."""
        return self.head_obs(outputs), self.head_reward(outputs), self.head_end(outputs)

    # ------------------------------------------------------------------ imagination

    def imagine_reset(self, context_tokens: Tensor, context_action: Tensor) -> ImaginationState:
        """context_tokens long (b, 2, K) frames T-1, T; context_action long (b,) a_{T-1}.

        The context is not processed yet: it is fed together with the first action.
        """
        b = context_tokens.shape[0]
        if context_tokens.dim() != 3 or context_tokens.shape[1:] != (2, self.tokens_per_frame):
            raise ValueError(
                f"context_tokens must be (b, 2, {self.tokens_per_frame}), got "
                f"{tuple(context_tokens.shape)}"
            )
        if context_action.shape != (b,):
            raise ValueError(f"context_action must be ({b},), got {tuple(context_action.shape)}")
        pending = torch.cat(
            [
                context_tokens[:, 0].long(),
                self.action_tokens(context_action)[:, None],
                context_tokens[:, 1].long(),
            ],
            dim=1,
        )
        return ImaginationState(states=None, position=0, pending=pending)

    def _feed(
        self, state: ImaginationState, actions: Tensor, tokenizer: nn.Module | None
    ) -> tuple[Tensor, ImaginationState]:
        """Feed pending tokens + V+a chunkwise -> output at the action token (b, E), new state."""
        if actions.shape != (state.pending.shape[0],):
            raise ValueError(
                f"actions must be ({state.pending.shape[0]},), got {tuple(actions.shape)}"
            )
        tokens = torch.cat([state.pending, self.action_tokens(actions)[:, None]], dim=1)
        out, states = self.retnet.forward_chunkwise(
            self.embed(tokens, tokenizer), state.position, state.states
        )
        last = out[:, -1]
        new = ImaginationState(states, state.position + tokens.shape[1], tokens[:, :0])
        return last, new

    def imagine_act(
        self, state: ImaginationState, actions: Tensor, tokenizer: nn.Module | None
    ) -> tuple[Tensor, Tensor, ImaginationState]:
        """actions long (b,) -> reward logits (b, 3), end logits (b, 2), new state."""
        last, new = self._feed(state, actions, tokenizer)
        return self.head_reward(last), self.head_end(last), new


class POPWorldModel(TokenWorldModel):
    """RetNet world model with Parallel Observation Prediction."""

    def __init__(
        self, cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int
    ) -> None:
        super().__init__(cfg, tokenizer_cfg, num_actions)
        # j rows as in the reference; row K is never used for a prediction and,
        # the prediction stream being causal, we skip computing it.
        self.prediction_tokens = nn.Embedding(self.tokens_per_block, cfg.embed_dim)

    def _predict(self, states: LayerStates | None, start: int | Tensor, batch_size: int) -> Tensor:
        """Run the K prediction tokens from `states` without producing a state.

        states: per-layer (n, h, d, e) or None; start int or long (n,) -> outputs (n, K, E).
        """
        k = self.tokens_per_frame
        ids = torch.arange(k, device=self.prediction_tokens.weight.device)
        if self.cfg.shared_prediction_token:
            ids = torch.zeros_like(ids)
        x = repeat(self.prediction_tokens(ids), "k e -> n k e", n=batch_size)
        out, _ = self.retnet.forward_chunkwise(x, start, states, return_state=False)
        return out

    def forward(
        self, tokens: Tensor, tokenizer: nn.Module | None, blocks_per_chunk: int | None = None
    ) -> Tensor:
        """POP training forward, parallel over the blocks of each chunk.

        tokens long (b, t, j) -> outputs (b, t, j, E): [u_{t,0..K-1}, h_{t,K}], i.e. the
        prediction stream at the K observation slots and the real stream at the action slot.
        """
        b, t, j = tokens.shape
        if j != self.tokens_per_block:
            raise ValueError(f"expected {self.tokens_per_block} tokens per block, got {j}")
        per_chunk = blocks_per_chunk or self.cfg.blocks_per_chunk
        x = self.embed(tokens, tokenizer)  # (b, t, j, E)
        states: list[Tensor] | None = None
        outputs = []
        for t0 in range(0, t, per_chunk):
            chunk = x[:, t0 : t0 + per_chunk]
            n_blocks = chunk.shape[1]
            # 1. real stream, with the state after every block of the chunk, per layer
            real, block_states = self.retnet.forward_block_states(
                rearrange(chunk, "b t j e -> b (t j) e"), j, t0 * j, states
            )
            # 2. prediction stream: block t starts from the state after block t-1
            priors = []
            for layer, per_block in enumerate(block_states):
                before = (
                    torch.zeros_like(per_block[:, :1]) if states is None else states[layer][:, None]
                )
                prior = torch.cat([before, per_block[:, :-1]], dim=1)  # (b, t, h, d, e)
                priors.append(rearrange(prior, "b t h d e -> (b t) h d e"))
            starts = j * torch.arange(t0, t0 + n_blocks, device=tokens.device)
            pred = self._predict(priors, repeat(starts, "t -> (b t)", b=b), b * n_blocks)
            # 3. [u_{t,0..K-1}, h_{t,K}]
            real = rearrange(real, "b (t j) e -> b t j e", j=j)
            pred = rearrange(pred, "(b t) k e -> b t k e", b=b)
            outputs.append(torch.cat([pred, real[:, :, -1:]], dim=2))
            # 4. carry the state after the chunk's last block
            states = [per_block[:, -1] for per_block in block_states]
        return torch.cat(outputs, dim=1)

    def forward_sequential(self, tokens: Tensor, tokenizer: nn.Module | None) -> Tensor:
        """Sequential oracle with the semantics of `forward` (test reference, slow).

        For each block: prediction tokens from the current state (state discarded), then the
        real block chunkwise to update the state. tokens (b, t, j) -> outputs (b, t, j, E).
        """
        b, t, j = tokens.shape
        x = self.embed(tokens, tokenizer)
        states = None
        outputs = []
        for step in range(t):
            pred = self._predict(states, step * j, b)
            real, states = self.retnet.forward_chunkwise(x[:, step], step * j, states)
            outputs.append(torch.cat([pred, real[:, -1:]], dim=1))
        return torch.stack(outputs, dim=1)

    def compute_loss(
        self,
        batch: dict[str, Tensor],
        tokenizer: nn.Module,
        metrics_as_tensors: bool = False,
    ) -> tuple[Tensor, dict]:
        """Losses of 4.6 on a float batch (b, t) from `batch_to_device`.

        Blocks t < context_length and padded steps get no loss. Returns (loss, metrics) with
        metrics {loss, loss_obs, loss_reward, loss_end} as floats (tensors if asked).
        """
        self._check_batch(batch)
        ctx, k = self.cfg.context_length, self.tokens_per_frame
        obs_tokens = self.encode_observations(batch["observations"], tokenizer)
        outputs = self(self.block_tokens(obs_tokens, batch["actions"]), tokenizer)[:, ctx:]
        valid, target_reward, target_end = self._reward_end_targets(batch)
        target_obs = obs_tokens[:, ctx:].masked_fill(~valid[..., None], IGNORE)
        last = outputs[:, :, k]
        return self._total_loss(
            self.head_obs(outputs[:, :, :k]),
            target_obs,
            self.head_reward(last),
            target_reward,
            self.head_end(last),
            target_end,
            metrics_as_tensors,
        )

    def imagine_frame(
        self, state: ImaginationState, tokenizer: nn.Module | None, sample: Sampler
    ) -> tuple[Tensor, ImaginationState]:
        """Predict the next frame in one parallel pass (4.7 step 4).

        The K prediction tokens run from the current state at positions n..n+K-1 (where the
        next real block will sit); the resulting state is discarded. `sample` maps logits
        (b, K, V) to tokens (b, K); they become the pending tokens of the next step.
        """
        del tokenizer  # prediction tokens use the WM's own table
        if state.pending.shape[1]:
            raise RuntimeError("imagine_frame needs an action step first (pending tokens left)")
        b = state.pending.shape[0]
        logits = self.head_obs(self._predict(state.states, state.position, b))
        tokens = sample(logits)
        return tokens, ImaginationState(state.states, state.position, tokens)
