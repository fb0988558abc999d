"""A tiny Atari-like env for the protocol's rare edges.

Raw frames are 210x160x3 and constant, with value `frame_value(k)` for the k-th raw frame
since the last reset, so a resized frame stays constant and max-pooling is checkable.
Every raw frame gives reward 1. Lives drop at chosen raw frames; the game ends at a chosen
raw frame or when lives reach 0.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def frame_value(k: int) -> int:
    """Not monotonic in k, so a max over two frames tells which two were pooled."""
    return (k * 37) % 251


class FakeAle:
    def __init__(self, env: FakeAtari) -> None:
        self.env = env

    def lives(self) -> int:
        return self.env.lives


class FakeAtari(gym.Env):
    metadata: dict = {"render_modes": []}

    def __init__(
        self,
        lives: int = 3,
        life_loss_at: tuple[int, ...] = (),
        terminate_at: int | None = None,
        num_actions: int = 4,
    ) -> None:
        self.initial_lives = lives
        self.life_loss_at = set(life_loss_at)
        self.terminate_at = terminate_at
        self.observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(num_actions)
        self.ale = FakeAle(self)
        self.frame = 0
        self.lives = lives
        self.resets = 0
        self.actions: list[int] = []  # every raw-frame action since the last reset
        self.reset_seeds: list[int | None] = []

    def get_action_meanings(self) -> list[str]:
        return ["NOOP", "FIRE", "RIGHT", "LEFT"][: self.action_space.n]

    def _obs(self) -> np.ndarray:
        return np.full((210, 160, 3), frame_value(self.frame), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.reset_seeds.append(seed)
        self.frame = 0
        self.lives = self.initial_lives
        self.resets += 1
        self.actions = []
        return self._obs(), {"lives": self.lives}

    def step(self, action):
        self.frame += 1
        self.actions.append(int(action))
        if self.frame in self.life_loss_at:
            self.lives -= 1
        terminated = self.lives == 0 or self.frame == self.terminate_at
        return self._obs(), 1.0, terminated, False, {"lives": self.lives}
