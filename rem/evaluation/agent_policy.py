"""`AgentPolicy`: the trained agent behind the `Policy` protocol (collection, evaluation).

Train policy: temperature 1.0, epsilon 0.01; test policy: temperature 0.5, epsilon 0
(docs/protocol.md#train-and-test-envs). Epsilon is one uniform draw per step: below epsilon,
*all* envs take uniform random actions. Kept from the reference on purpose: the actor-critic
has already fed its own sampled action into its LSTM when epsilon replaces it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _to_float(frames: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (..., 3, 64, 64) -> float32 in [0, 1] on `device`."""
    # copy: frames may be read-only views of stored episodes
    return torch.tensor(np.asarray(frames), device=device, dtype=torch.float32).div_(255.0)


class AgentPolicy:
    def __init__(
        self,
        agent: torch.nn.Module,
        temperature: float,
        epsilon: float,
        device: str | torch.device,
        *,
        num_actions: int | None = None,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.agent = agent
        self.temperature = temperature
        self.epsilon = epsilon
        self.device = torch.device(device)
        self.num_actions = int(num_actions if num_actions is not None else agent.num_actions)
        self.rng = np.random.default_rng(seed)
        self.autocast = False  # bf16 autocast on CUDA, set by the trainer

    # the Policy protocol -------------------------------------------------------------------

    def reset(self, n: int) -> None:
        self.agent.actor_critic.reset(n, self.device)

    def reset_rows(self, done_mask: np.ndarray) -> None:
        done = torch.as_tensor(np.asarray(done_mask, dtype=bool), device=self.device)
        if done.any():
            self.agent.actor_critic.reset_rows(done)

    @torch.no_grad()
    def burn_in(self, frames: np.ndarray, mask: np.ndarray, actions: np.ndarray) -> None:
        """frames uint8 (n, t, 3, 64, 64), mask bool (n, t), actions int64 (n, t) (the action
        stored with each frame): feed the LSTM, with action steps where
        `actor_critic.burnin_actions` says (reference: after frame i with
        (i + 1) % tokens_per_frame == 0)."""
        if frames.shape[1] == 0:
            return
        mask_t = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
        actions_t = torch.as_tensor(np.asarray(actions, dtype=np.int64), device=self.device)
        with self._autocast():
            self.agent.actor_critic.burn_in(
                _to_float(frames, self.device), mask_t, self.agent.tokenizer, actions_t
            )

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs uint8 (n, 3, 64, 64) -> actions int64 (n,)."""
        with self._autocast():
            actions = self.agent.actor_critic.act(
                _to_float(obs, self.device), self.agent.tokenizer, self.temperature
            )
        actions = actions.cpu().numpy().astype(np.int64)
        if self.epsilon > 0 and self.rng.random() < self.epsilon:
            actions = self.rng.integers(self.num_actions, size=actions.shape[0]).astype(np.int64)
        return actions

    # state (the epsilon generator) for checkpoints ----------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def _autocast(self):
        return torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast
        )
