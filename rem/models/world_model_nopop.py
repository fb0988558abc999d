"""No-POP ablation: a standard next-token RetNet world model
(docs/protocol.md#no-pop-world-model).

Same token layout, embeddings and heads as the POP model (see world_model.py), no prediction
tokens. The output at position p predicts token p+1; only labels that are observation tokens
of blocks t >= context_length (and not padding) are used. The output at the action token a_t
feeds the reward/end heads and also predicts z_{t+1}^0.

Training runs the sequence chunkwise in chunks of `blocks_per_chunk` blocks (195 tokens at
paper size). Imagination feeds context + action chunkwise, then generates the next frame
token by token with the single-token recurrent form (K sequential calls).

Reference bugs fixed here: (a) the model can be constructed from the config (the reference
raises a TypeError); (b) with shared embeddings the reference never trains the action
embeddings; `world_model.no_pop_train_action_emb=True` (default) trains them, False
reproduces the bug (the table is detached, so its action rows stay at their random init).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from rem.config import TokenizerConfig, WorldModelConfig
from rem.models.world_model import IGNORE, ImaginationState, Sampler, TokenWorldModel


class NoPOPWorldModel(TokenWorldModel):
    def __init__(
        self, cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int
    ) -> None:
        super().__init__(cfg, tokenizer_cfg, num_actions)
        # The reference bug only exists with shared embeddings (its fresh leaf table).
        self.train_action_embeddings = cfg.no_pop_train_action_emb or not cfg.shared_embeddings

    def forward(
        self, tokens: Tensor, tokenizer: nn.Module | None, blocks_per_chunk: int | None = None
    ) -> Tensor:
        """tokens long (b, t, j) -> outputs (b, t*j, E), chunkwise in chunks of whole blocks."""
        b, t, j = tokens.shape
        if j != self.tokens_per_block:
            raise ValueError(f"expected {self.tokens_per_block} tokens per block, got {j}")
        chunk = (blocks_per_chunk or self.cfg.blocks_per_chunk) * j
        x = self.embed(rearrange(tokens, "b t j -> b (t j)"), tokenizer)
        states = None
        outputs = []
        for start in range(0, t * j, chunk):
            out, states = self.retnet.forward_chunkwise(x[:, start : start + chunk], start, states)
            outputs.append(out)
        return torch.cat(outputs, dim=1)

    def compute_loss(
        self,
        batch: dict[str, Tensor],
        tokenizer: nn.Module,
        metrics_as_tensors: bool = False,
    ) -> tuple[Tensor, dict]:
        """Next-token losses on a float batch (b, t); same terms and metrics as the POP model."""
        self._check_batch(batch)
        ctx, k, j = self.cfg.context_length, self.tokens_per_frame, self.tokens_per_block
        obs_tokens = self.encode_observations(batch["observations"], tokenizer)
        tokens = self.block_tokens(obs_tokens, batch["actions"])
        outputs = self(tokens, tokenizer)  # (b, t*j, E)
        valid, target_reward, target_end = self._reward_end_targets(batch)
        # labels: observation slots of blocks t >= ctx that are not padding
        is_label = torch.zeros_like(tokens, dtype=torch.bool)
        is_label[:, ctx:, :k] = valid[..., None]
        labels = rearrange(tokens.masked_fill(~is_label, IGNORE), "b t j -> b (t j)")
        # output p predicts label p+1; the first label sits at ctx*j
        logits_obs = self.head_obs(outputs[:, ctx * j - 1 : -1])
        last = rearrange(outputs, "b (t j) e -> b t j e", j=j)[:, ctx:, k]
        return self._total_loss(
            logits_obs,
            labels[:, ctx * j :],
            self.head_reward(last),
            target_reward,
            self.head_end(last),
            target_end,
            metrics_as_tensors,
        )

    def imagine_act(
        self, state: ImaginationState, actions: Tensor, tokenizer: nn.Module | None
    ) -> tuple[Tensor, Tensor, ImaginationState]:
        """actions long (b,) -> reward logits (b, 3), end logits (b, 2), new state.

        The action token's output also predicts the next frame's first token (kept in
        `next_logits`).
        """
        last, new = self._feed(state, actions, tokenizer)
        new.next_logits = self.head_obs(last)
        return self.head_reward(last), self.head_end(last), new

    def imagine_frame(
        self, state: ImaginationState, tokenizer: nn.Module | None, sample: Sampler
    ) -> tuple[Tensor, ImaginationState]:
        """Generate the next frame token by token (K recurrent calls).

        `sample` maps logits (b, V) to tokens (b,). The generated tokens are already fed to the
        RetNet, so nothing stays pending. The output after the last token would predict the
        action token; the reference samples and discards it, we do not compute it.
        """
        if state.next_logits is None:
            raise RuntimeError("imagine_frame needs an action step first")
        logits, states, position = state.next_logits, state.states, state.position
        tokens = []
        for i in range(self.tokens_per_frame):
            token = sample(logits)
            tokens.append(token)
            out, states = self.retnet.forward_recurrent(
                self.embed(token, tokenizer), position, states
            )
            position += 1
            if i < self.tokens_per_frame - 1:
                logits = self.head_obs(out)
        pending = state.pending[:, :0]
        return torch.stack(tokens, dim=1), ImaginationState(states, position, pending)
