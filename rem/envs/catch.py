"""Catch: a small pixel game that ships with the package, for checking that the agent learns.

A ball falls one cell per step from the top row of an 8 x 8 grid of 8 x 8-pixel cells (a 64x64
RGB frame, the size the Atari protocol gives the agent); the agent moves a paddle of `paddle`
cells (default 2) in the bottom row left, right or not at all. When the ball reaches the bottom
row the agent gets +1 if the paddle is under it, else -1, and the next ball appears in a random column of the top row. An
episode is `balls` balls (7 steps each from the top row to the paddle row, so 70 steps at the
default 10 balls), then it terminates.

Why this game: the best action depends on the frame (where the ball is against the paddle), a
uniformly random policy catches a quarter of the balls (mean return -5.0 over 10 balls) while
an optimal one catches every ball (the paddle can cross the grid in the 7 steps a ball takes
to fall), rewards come often, and a frame is nearly empty, so a small tokenizer and world model
can fit it in CPU-minutes. Why a 2-cell paddle: with a 1-cell paddle random play catches one
ball in eight, and the world model, which learns its reward head from that play, then
predicts a catch too rarely for imagined catches to teach the actor-critic anything (measured
in docs/learning.md#rung-1-catch). It plays the role of an Atari game everywhere (`rem train --game Catch`,
`rem evaluate --policy random`, the learning workflow); the Atari wrappers (frame skip, max
pooling, no-op starts, life loss, raw-frame time limit) do not apply: the game emits
agent-step frames at 64x64 directly and has no lives, and an episode's length is fixed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

GRID = 8  # cells per side
CELL = 8  # pixels per cell side: GRID * CELL = 64, the agent's frame size
ACTION_MEANINGS = ("NOOP", "LEFT", "RIGHT")  # NOOP first, as in ALE's minimal action sets
_MOVES = (0, -1, 1)
BALL_COLOR = (255, 255, 255)
PADDLE_COLOR = (64, 160, 255)


class CatchEnv(gym.Env):
    """Catch with frames (64, 64, 3) uint8 and actions 0 NOOP, 1 LEFT, 2 RIGHT.

    `seed` seeds the game's generator once (ball columns, the paddle's first column); later
    resets continue it, as the Atari envs' no-op generator does, so an env built with a
    seed plays a reproducible sequence of episodes.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, *, seed: int, balls: int = 10, paddle: int = 2) -> None:
        if balls < 1:
            raise ValueError(f"Catch needs at least one ball per episode, got balls={balls}")
        if not 1 <= paddle < GRID:
            raise ValueError(f"Catch's paddle is 1 to {GRID - 1} cells wide, got paddle={paddle}")
        self.balls, self.paddle = balls, paddle
        self.observation_space = gym.spaces.Box(0, 255, (GRID * CELL, GRID * CELL, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(ACTION_MEANINGS))
        self.rng = np.random.default_rng(seed)
        self.ball_row = self.ball_col = self.paddle_col = 0
        self.balls_left = 0
        self.started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.paddle_col = int(self.rng.integers(GRID - self.paddle + 1))
        self.balls_left = self.balls
        self._drop_ball()
        self.started = True
        return self.render(), {}

    def step(self, action):
        if not self.started:
            raise RuntimeError("Catch.step called before reset")
        if not 0 <= int(action) < len(_MOVES):
            raise ValueError(f"Catch has actions 0..{len(_MOVES) - 1}, got {action}")
        self.paddle_col = min(GRID - self.paddle, max(0, self.paddle_col + _MOVES[int(action)]))
        self.ball_row += 1
        reward = 0.0
        terminated = False
        if self.ball_row == GRID - 1:  # the ball reaches the paddle's row
            reward = 1.0 if self.catches() else -1.0
            self.balls_left -= 1
            terminated = self.balls_left == 0
            if not terminated:
                self._drop_ball()
        return self.render(), reward, terminated, False, {}

    def catches(self) -> bool:
        """Whether the paddle is under the ball's column."""
        return self.paddle_col <= self.ball_col < self.paddle_col + self.paddle

    def _drop_ball(self) -> None:
        self.ball_row, self.ball_col = 0, int(self.rng.integers(GRID))

    def render(self) -> np.ndarray:
        """The current frame, (64, 64, 3) uint8."""
        frame = np.zeros(self.observation_space.shape, dtype=np.uint8)
        _fill(frame, self.ball_row, self.ball_col, BALL_COLOR)
        for col in range(self.paddle_col, self.paddle_col + self.paddle):
            _fill(frame, GRID - 1, col, PADDLE_COLOR)
        return frame

    @property
    def raw_frame(self) -> np.ndarray:
        """The frame the viewer shows (the game has no larger native frame)."""
        return self.render()

    # Checkpoint state: plain Python types only (loads with torch.load(weights_only=True)).
    def get_state(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "ball": [self.ball_row, self.ball_col],
            "paddle_col": self.paddle_col,
            "balls_left": self.balls_left,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.ball_row, self.ball_col = (int(v) for v in state["ball"])
        self.paddle_col = int(state["paddle_col"])
        self.balls_left = int(state["balls_left"])
        self.started = True


def _fill(frame: np.ndarray, row: int, col: int, color: tuple[int, int, int]) -> None:
    frame[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL] = color


def optimal_action(env: CatchEnv) -> int:
    """The action that moves the paddle under the ball's column (for tests and baselines)."""
    if env.ball_col < env.paddle_col:
        return 1
    if env.ball_col >= env.paddle_col + env.paddle:
        return 2
    return 0
