"""The world model as a playable game, kept anchored on the real game within its block budget.

`ImaginationEnv` (rem.models.imagination) holds the world model's recurrent state. A rollout
starts from the agent's context (`world_model.context_length`): REM's two frames and the
action between them (context blocks [z_{T-1}, a_{T-1}] and [z_T, a_T]), IRIS's last frame
alone; every step appends one block. The model was trained on sequences of
`max_blocks` blocks, so a rollout can predict frames for `max_blocks - context_length` steps
(paper: 10 - 2 = 8); after that we re-anchor it on the last two *real* frames and the real
action between them, which the caller steps alongside with the same actions.

Two bugs of the reference play tool are avoided here (docs/protocol.md#changed): the context action is
handed to `ImaginationEnv` as an action index, which offsets it by the vocabulary size when
it builds the token (the reference put the raw index in the token stream, hitting an
observation row of the embedding table); and refreshing every 10 steps made the model hold
11 blocks, one more than `max_blocks`.
"""

from __future__ import annotations

import numpy as np
import torch

from rem.config import WorldModelConfig
from rem.models.imagination import ImaginationEnv, context_of


def to_float(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (n, 3, 64, 64) -> float32 (n, 3, 64, 64) in [0, 1]."""
    return torch.as_tensor(np.asarray(frames), device=device).float().div_(255.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float (n, 3, 64, 64) in [0, 1] -> uint8 (n, 3, 64, 64)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


class DreamSession:
    """One world-model rollout (batch of 1) that re-anchors itself on real frames.

    Usage: `anchor(prev_obs, obs, prev_action)`, then `step(action)` until `needs_anchor`,
    then `anchor(...)` again on the latest real frames.
    """

    def __init__(
        self,
        agent: torch.nn.Module,
        wm_cfg: WorldModelConfig,
        num_actions: int,
        device: torch.device,
    ):
        self.tokenizer = agent.tokenizer
        self.world_model = agent.world_model
        self.num_actions = num_actions
        self.context = wm_cfg.context_length  # 2 (REM) or 1 (IRIS: prev_obs is not used)
        self.budget = wm_cfg.max_blocks - wm_cfg.context_length  # frame-predicting steps
        if self.budget < 1:
            raise ValueError(
                f"world_model.max_blocks ({wm_cfg.max_blocks}) must exceed "
                f"world_model.context_length ({wm_cfg.context_length}) to imagine any frame"
            )
        self.device = device
        self.env = ImaginationEnv(self.tokenizer, self.world_model)
        self.steps_since_anchor = 0
        self.anchors = 0
        self.max_blocks_used = 0  # blocks the model's state held at most (tests check the budget)
        self._anchored = False

    @property
    def needs_anchor(self) -> bool:
        return not self._anchored or self.steps_since_anchor >= self.budget

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (n, 3, 64, 64) -> tokens long (n, k)."""
        return self.tokenizer.encode(to_float(frames, self.device)).tokens

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> np.ndarray:
        """tokens long (n, k) -> uint8 (n, 3, 64, 64)."""
        return to_uint8(self.tokenizer.decode(self.tokenizer.codes_from_tokens(tokens)))

    @torch.no_grad()
    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (n, 3, 64, 64) -> the tokenizer's reconstruction, uint8 (n, 3, 64, 64)."""
        return self.decode(self.encode(frames))

    @torch.no_grad()
    def anchor(self, prev_obs: np.ndarray, obs: np.ndarray, prev_action: int) -> np.ndarray:
        """Restart from real frames: prev_obs, obs uint8 (3, 64, 64); prev_action taken at prev_obs.

        Returns the tokenizer's view of `obs` (uint8 (3, 64, 64)): the frame the model now
        continues from.
        """
        if not 0 <= prev_action < self.num_actions:
            raise ValueError(
                f"context action {prev_action} is not an action index "
                f"(0..{self.num_actions - 1}); pass the action, not a token id"
            )
        tokens = self.encode(np.stack([prev_obs, obs]))  # (2, k)
        # (1, 2): the action taken at prev_obs, then a placeholder for the one at obs
        actions = torch.tensor([[prev_action, 0]], dtype=torch.long, device=self.device)
        self.env.reset(*context_of(tokens.unsqueeze(0), actions, self.context))
        self.steps_since_anchor = 0
        self.anchors += 1
        self._anchored = True
        return self.decode(tokens[1:])[0]

    @torch.no_grad()
    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        """Act in the world model -> (next frame uint8 (3, 64, 64), reward, done)."""
        if self.needs_anchor:
            raise RuntimeError(
                "the world model's block budget is used up (or it was never anchored); "
                "call anchor() on the latest real frames first"
            )
        actions = torch.tensor([action], dtype=torch.long, device=self.device)
        tokens, rewards, dones = self.env.step(actions, predict_next=True)
        self.steps_since_anchor += 1
        # Blocks the model has seen plus the one the predicted frame occupies.
        tokens_per_block = self.world_model.tokens_per_block
        used = self.env.position // tokens_per_block + 1
        self.max_blocks_used = max(self.max_blocks_used, used)
        return self.decode(tokens)[0], float(rewards[0]), bool(dones[0])
