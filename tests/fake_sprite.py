"""An action-conditioned Atari-like env: a sprite that moves by the action (issue 17 test).

Raw frames are 64x64x3, so the protocol's resize is the identity; run it with
`SPRITE_ENV` (frame skip 1, one no-op at reset) through `rem.envs.atari.wrap_env`. The sprite
is a 32x32 square in one of the 2x2 quadrants (2x2 tokens of a 4x4 tokenizer grid, 4x4 of
an 8x8 one); actions are NOOP, UP, RIGHT, LEFT, DOWN. The next frame and the reward are a
deterministic function of the current frame and the action: a move pushing the sprite into
a wall leaves it in place and gives reward 1 (any other step 0; under uniform actions about
40% of steps are rewarded). Lives never drop; `SPRITE_ENV`'s time limit ends every episode
after `SPRITE_EPISODE` agent steps. Small on purpose: 4 positions x 5 actions, so a tiny
world model learns the dynamics within a CI test's budget.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rem.config import EnvConfig

ACTIONS = ["NOOP", "UP", "RIGHT", "LEFT", "DOWN"]
MOVES = [(0, 0), (-1, 0), (0, 1), (0, -1), (1, 0)]  # (row, column) per action
GRID, CELL = 2, 32
SPRITE_EPISODE = 40  # agent steps per episode (the reset no-op is a raw frame too)
SPRITE_ENV = EnvConfig(
    frame_skip=1,
    train_noop_max=1,
    test_noop_max=1,
    train_max_raw_frames=SPRITE_EPISODE + 1,
    test_max_raw_frames=SPRITE_EPISODE + 1,
)
BACKGROUND = np.array([20, 40, 90], dtype=np.uint8)
SPRITE = np.array([240, 200, 40], dtype=np.uint8)


class _Lives:
    def lives(self) -> int:
        return 1


class SpriteAtari(gym.Env):
    metadata: dict = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (GRID * CELL, GRID * CELL, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.ale = _Lives()
        self.position = (0, 0)

    def get_action_meanings(self) -> list[str]:
        return list(ACTIONS)

    def _obs(self) -> np.ndarray:
        frame = np.empty((GRID * CELL, GRID * CELL, 3), dtype=np.uint8)
        frame[:] = BACKGROUND
        row, col = self.position
        frame[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL] = SPRITE
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = tuple(int(x) for x in self.np_random.integers(0, GRID, size=2))
        return self._obs(), {}

    def step(self, action):
        d_row, d_col = MOVES[int(action)]
        row, col = self.position[0] + d_row, self.position[1] + d_col
        bumped = (d_row, d_col) != (0, 0) and not (0 <= row < GRID and 0 <= col < GRID)
        if not bumped:
            self.position = (row, col)
        return self._obs(), float(bumped), False, False, {}
