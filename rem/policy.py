"""The acting interface shared by evaluation and collection, and the uniform-random policy.

A policy acts on `n` envs at once and may keep per-env recurrent state (the actor-critic's
LSTM): `reset(n)` starts fresh state for n envs, `reset_rows(done)` zeroes the rows whose
episode just ended, `burn_in(frames, mask, actions)` warms the state up on stored frames before
continuing an episode, `act(obs)` returns one action per env and advances the state.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self, n: int) -> None:
        """Fresh state for `n` envs."""

    def reset_rows(self, done: np.ndarray) -> None:
        """Zero the state of rows where `done` (bool (n,)) is True."""

    def burn_in(self, frames: np.ndarray, mask: np.ndarray, actions: np.ndarray) -> None:
        """Warm up on frames uint8 (n,t,3,64,64) and the actions int64 (n,t) taken after them;
        mask bool (n,t) is False on left padding."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs uint8 (n,3,64,64) -> actions int64 (n,)."""


class RandomPolicy:
    """Uniform over the game's minimal action set; stateless, seeded explicitly."""

    def __init__(self, num_actions: int, seed: int | np.random.Generator) -> None:
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.num_actions = num_actions
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.n = 1

    def reset(self, n: int) -> None:
        self.n = n

    def reset_rows(self, done: np.ndarray) -> None:
        pass

    def burn_in(self, frames: np.ndarray, mask: np.ndarray, actions: np.ndarray) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, self.num_actions, size=len(obs), dtype=np.int64)
