"""Collect train-env steps into the replay, continuing unfinished episodes across calls
(docs/protocol.md#episodes-and-the-replay).

Each `collect(policy, num_steps)` call:
- resets the policy's state for one env; if the previous call stopped in the middle of an
  episode, burns the policy in on the last `burn_in` stored frames of that episode
  (left-padded, mask False on padding) and carries on from the frame it stopped at;
- steps the env, zeroing the policy state (`reset_rows`) when an episode ends;
- stores finished episodes in the replay and, at the end of the call, the unfinished one
  too (added the first time, extended by later calls), so samplers see it at once.
The policy state is discarded between calls. Exploration (temperature, epsilon) belongs to
the policy. The steps themselves run in the episode loop that evaluation uses too
(`rem.data.loop.EpisodeLoop`, on this one env).

Checkpointing: `state_dict()` holds the pending frame, the id/return/length of the episode
in progress, the step counters and (by default) the env's exact state (ALE state, raw-frame
counter, no-op RNG, lives), so a resumed run continues the same game frame for frame. Saved
with `include_env=False`, or loaded into a replay that lacks the episode, the episode in
progress is left as is (unfinished) and the next call starts a new game.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rem.data.episode import Episode
from rem.data.loop import EpisodeLoop, single_env_step
from rem.data.replay import Replay
from rem.envs.atari import get_env_state, pack_frame, set_env_state, unpack_frame
from rem.policy import Policy


@dataclass
class CollectStats:
    steps: int = 0
    returns: list[float] = field(default_factory=list)  # of episodes finished in this call
    lengths: list[int] = field(default_factory=list)  # full lengths, earlier calls included

    @property
    def episodes(self) -> int:
        return len(self.returns)


class Collector:
    """Runs one (train) env built by `make_env` into a `Replay`."""

    def __init__(self, env: gym.Env, replay: Replay, *, burn_in: int = 20) -> None:
        if burn_in < 0:
            raise ValueError(f"burn_in must be >= 0, got {burn_in}")
        self.env = env
        self.replay = replay
        self.burn_in = burn_in
        self._loop: EpisodeLoop | None = None  # the game in progress; None = reset first
        self._episode_id: int | None = None  # replay id of the unfinished episode
        self.total_steps = 0
        self.total_episodes = 0

    def collect(self, policy: Policy, num_steps: int) -> CollectStats:
        """Take exactly `num_steps` agent steps with `policy`."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        stats = CollectStats()
        if self._loop is None:
            self._start_new_game()
        loop = self._loop
        policy.reset(1)
        if self.burn_in > 0 and self._episode_id is not None and self._episode_id in self.replay:
            policy.burn_in(*self._burn_in_inputs())
        for _ in range(num_steps):
            finished = loop.step(policy)
            self.total_steps += 1
            stats.steps += 1
            for ep in finished:  # the episode's steps since the last store end it
                self._store(ep.episode)
                self._episode_id = None
                stats.returns.append(ep.total_return)
                stats.lengths.append(ep.length)
                self.total_episodes += 1
        if (part := loop.take_running(0)) is not None:
            self._store(part)
        return stats

    def _start_new_game(self, obs: np.ndarray | None = None) -> None:
        """A loop on a fresh game, or (`obs`, after a restored env state) on the game as is."""
        if obs is None:
            obs, _ = self.env.reset()
        self._loop = EpisodeLoop(single_env_step(self.env), obs[None], keep=True)
        self._episode_id = None

    def _burn_in_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Last `burn_in` stored steps, left-padded: frames uint8 (1,t,3,h,w), mask bool (1,t),
        actions int64 (1,t)."""
        episode = self.replay[self._episode_id]
        stored = episode.observations[-self.burn_in :]
        real = slice(self.burn_in - len(stored), None)
        frames = np.zeros((1, self.burn_in, *stored.shape[1:]), dtype=np.uint8)
        mask = np.zeros((1, self.burn_in), dtype=bool)
        actions = np.zeros((1, self.burn_in), dtype=np.int64)
        frames[0, real] = stored
        mask[0, real] = True
        actions[0, real] = episode.actions[-self.burn_in :]
        return frames, mask, actions

    def _store(self, part: Episode) -> None:
        if self._episode_id is not None and self._episode_id in self.replay:
            self.replay.extend(self._episode_id, part)
        else:  # a new episode, or its start was evicted: store what we have
            self._episode_id = self.replay.add(part)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self, include_env: bool = True) -> dict[str, Any]:
        """Plain Python types only (loads with `torch.load(weights_only=True)`)."""
        loop = self._loop
        return {
            "obs": pack_frame(loop.obs[0] if loop is not None else None),
            "episode_id": self._episode_id,
            "episode_return": float(loop.returns[0]) if loop is not None else 0.0,
            "episode_length": int(loop.lengths[0]) if loop is not None else 0,
            "total_steps": self.total_steps,
            "total_episodes": self.total_episodes,
            "env": get_env_state(self.env) if include_env and loop is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters and, when the env state was saved, the game in progress.

        Load the replay first: the episode in progress is continued only if the replay
        holds it.
        """
        self.total_steps = state["total_steps"]
        self.total_episodes = state["total_episodes"]
        resumable = state["env"] is not None and state["episode_id"] in self.replay
        if state["env"] is not None and (resumable or state["episode_id"] is None):
            self.env.reset()  # gymnasium wants a reset before the ALE state is replaced
            set_env_state(self.env, state["env"])
            self._start_new_game(unpack_frame(state["obs"]).transpose(1, 2, 0))
            self._episode_id = state["episode_id"]
            self._loop.returns[0] = state["episode_return"]
            self._loop.lengths[0] = state["episode_length"]
        else:
            self._loop = None  # the next call starts a new game
            self._episode_id = None
