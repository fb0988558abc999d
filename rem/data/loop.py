"""The one step loop of collection and evaluation: n envs acting with one policy, each env's
running episode accumulated step by step.

    loop = EpisodeLoop(step_envs, first_obs, keep=True)
    finished = loop.step(policy)        # one agent step of every env
    for ep in finished: ep.env, ep.total_return, ep.length, ep.episode

`step_envs(actions int64 (n,)) -> (obs uint8 (n, h, w, 3), rewards (n,), dones bool (n,))`
must reset an env whose episode ended, so the frame it returns is the next episode's first
(gymnasium's vector envs with `AutoresetMode.SAME_STEP`; `single_env_step` adapts one env).
After a step, the policy state of the envs whose episode ended is zeroed (`reset_rows`).

The train-time collector (one env, episodes continued across calls and stored piece by piece
in the replay) and the evaluation (K envs, exactly N episodes) both drive this loop; they
differ only in which episodes they keep and where they put them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rem.data.episode import Episode
from rem.policy import Policy

StepEnvs = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class FinishedEpisode:
    env: int  # index of the env that played it
    total_return: float  # undiscounted raw return of the whole episode
    length: int  # agent steps of the whole episode
    episode: Episode | None  # its kept steps (since the last `take_running`), else None


def to_chw(obs: np.ndarray) -> np.ndarray:
    """uint8 (..., h, w, 3) env frames -> contiguous (..., 3, h, w)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(obs), -1, -3))


def single_env_step(env: gym.Env) -> StepEnvs:
    """One gymnasium env as a batch of one that resets itself when its episode ends."""

    def step(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs, reward, terminated, truncated, _ = env.step(int(actions[0]))
        done = bool(terminated or truncated)
        if done:
            obs, _ = env.reset()
        return obs[None], np.array([float(reward)]), np.array([done])

    return step


class EpisodeLoop:
    """n envs, their current frames, and the return, length and kept steps of each running
    episode. `keep` (bool, or bool (n,)) says whose steps are kept; it may change between
    steps (evaluation stops keeping an env's steps once its quota is met)."""

    def __init__(self, step_envs: StepEnvs, obs: np.ndarray, keep: bool | np.ndarray = True):
        self.step_envs = step_envs
        self.obs = to_chw(obs)  # (n, 3, h, w): the frames the policy acts on next
        n = len(self.obs)
        self.keep = np.broadcast_to(np.asarray(keep, dtype=bool), (n,)).copy()
        self.returns = np.zeros(n, dtype=np.float64)
        self.lengths = np.zeros(n, dtype=np.int64)
        self._steps: list[list[tuple]] = [[] for _ in range(n)]

    def step(self, policy: Policy) -> list[FinishedEpisode]:
        """One agent step of every env -> the episodes that ended with it, env order."""
        frames = self.obs
        actions = np.asarray(policy.act(frames), dtype=np.int64)
        next_obs, rewards, dones = self.step_envs(actions)
        dones = np.asarray(dones, dtype=bool)
        self.returns += rewards
        self.lengths += 1
        finished = []
        for i in range(len(frames)):
            if self.keep[i]:
                self._steps[i].append((frames[i], actions[i], rewards[i], dones[i]))
            if dones[i]:
                finished.append(
                    FinishedEpisode(
                        i, float(self.returns[i]), int(self.lengths[i]), self.take_running(i)
                    )
                )
                self.returns[i], self.lengths[i] = 0.0, 0
        if dones.any():
            policy.reset_rows(dones)
        self.obs = to_chw(next_obs)
        return finished

    def take_running(self, i: int) -> Episode | None:
        """The kept steps of env i's episode since the last take, as an `Episode` (None if
        none were kept); the episode itself goes on."""
        steps, self._steps[i] = self._steps[i], []
        if not steps:
            return None
        frames, actions, rewards, ends = zip(*steps)
        return Episode(np.stack(frames), np.array(actions), np.array(rewards), np.array(ends))
