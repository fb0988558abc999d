"""Imagination environment: batched rollouts inside the world model (docs/protocol.md#imagination).

Shared by the actor-critic's training rollout and the viewer.

    env = ImaginationEnv(tokenizer, world_model)
    env.reset(context_tokens, context_action)   # (b, c, K) frames T-c+1..T, (b,) a_{T-1} or None
    next_tokens, rewards, dones = env.step(actions)          # (b, K), (b,), (b,)
    _, rewards, dones = env.step(actions, predict_next=False)  # last step: no next frame

The context is the agent's `context_length` c real frames (rem.config.AGENTS: REM 2, frames
T-1 and T with the action a_{T-1} between them; IRIS 1, frame T alone, action None);
`context_of` cuts it from a segment. The world model provides the three primitives
`imagine_reset`, `imagine_act`, `imagine_frame` (REM's POP and no-POP models, IRIS's GPT).

POP world model: each step feeds the pending tokens (first the 129 context tokens, later the
K generated ones) plus the action chunkwise, reads reward/end at the action token and
predicts the whole next frame in one parallel K-token pass. No-POP: the same, except the next
frame is generated token by token. Rewards and dones are sampled from the heads (faithful)
or taken as argmax when `world_model.sample_imagined_reward_done` is False; the K next-frame
tokens are sampled independently at temperature 1. Rollouts do not stop after a predicted
done. Calling `reset` again re-anchors the rollouts on real frames (the viewer does this).

Everything runs without gradient with the world model in eval mode (its previous mode is
restored after each call). Positions restart at 0 at every reset (segment-relative).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rem.models.world_model import ImaginationState


def context_of(tokens: Tensor, actions: Tensor, context: int) -> tuple[Tensor, Tensor | None]:
    """Segments tokens long (b, s, K), actions long (b, s) -> the imagination context:
    tokens (b, c, K) of the last c frames and the action before the last frame (b,), or
    None when c == 1 (no action inside the context)."""
    if tokens.shape[1] < context:
        raise ValueError(f"segments need >= {context} steps, got {tokens.shape[1]}")
    return tokens[:, -context:], (actions[:, -2] if context > 1 else None)


class ImaginationEnv:
    def __init__(
        self,
        tokenizer: nn.Module,
        world_model: nn.Module,
        sample_reward_done: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.world_model = world_model
        self.sample_reward_done = (
            world_model.cfg.sample_imagined_reward_done
            if sample_reward_done is None
            else sample_reward_done
        )
        self.generator = generator  # optional, for reproducible rollouts
        self._state: ImaginationState | None = None
        self._needs_frame = False  # after step(predict_next=False) only reset may follow

    @property
    def position(self) -> int:
        """Absolute position of the next token (0 right after reset)."""
        return 0 if self._state is None else self._state.position

    def _sample(self, logits: Tensor) -> Tensor:
        """logits (..., n) -> ids long (...), one categorical draw each at temperature 1."""
        probs = torch.softmax(logits.float(), dim=-1)
        flat = probs.reshape(-1, probs.shape[-1])
        ids = torch.multinomial(flat, 1, generator=self.generator)
        return ids.reshape(probs.shape[:-1])

    def _pick(self, logits: Tensor) -> Tensor:
        return self._sample(logits) if self.sample_reward_done else logits.argmax(dim=-1)

    @torch.no_grad()
    def reset(self, context_tokens: Tensor, context_action: Tensor | None) -> None:
        """context_tokens long (b, c, K) real frames T-c+1..T; context_action long (b,) a_{T-1}
        (None for a one-frame context)."""
        self._state = self.world_model.imagine_reset(context_tokens, context_action)
        self._needs_frame = False

    @torch.no_grad()
    def step(
        self, actions: Tensor, predict_next: bool = True
    ) -> tuple[Tensor | None, Tensor, Tensor]:
        """actions long (b,) -> next_tokens long (b, K) or None, rewards float (b,), dones long (b,).

        Rewards are in {-1, 0, 1}; with predict_next=False no next frame is generated and only
        `reset` may follow.
        """
        if self._state is None:
            raise RuntimeError("ImaginationEnv.step called before reset")
        if self._needs_frame:
            raise RuntimeError(
                "the previous step had predict_next=False (no next frame): call reset first"
            )
        wm = self.world_model
        was_training = wm.training
        wm.eval()
        try:
            logits_reward, logits_end, state = wm.imagine_act(self._state, actions, self.tokenizer)
            rewards = (self._pick(logits_reward) - 1).float()
            dones = self._pick(logits_end).long()
            next_tokens = None
            if predict_next:
                next_tokens, state = wm.imagine_frame(state, self.tokenizer, self._sample)
        finally:
            wm.train(was_training)
        self._state = state
        self._needs_frame = not predict_next
        return next_tokens, rewards, dones
