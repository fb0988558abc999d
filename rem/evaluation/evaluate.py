"""Run exactly N full test episodes of a policy on parallel test envs
(docs/protocol.md#evaluation-and-the-score-of-a-run).

The reference waits until every env finished an episode and keeps them all (100 requested
with 8 envs -> 104). Here each env gets a fixed quota decided before any episode starts
(N // K, plus one for the first N % K envs), so exactly N episodes count; an env that met
its quota keeps stepping with the others but its further episodes are ignored. Because the
quota is fixed up front, short episodes are not favoured over long ones. The envs step in
the episode loop that collection uses too (`rem.data.loop.EpisodeLoop`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from rem.config import EnvConfig
from rem.data.episode import Episode
from rem.data.loop import EpisodeLoop, FinishedEpisode
from rem.envs.vector import make_vector_env
from rem.games import check_game
from rem.policy import Policy


@dataclass
class EvalResult:
    game: str
    episodes: int
    returns: list[float]  # one per episode, env-major order (env 0's episodes first)
    lengths: list[int]  # agent steps per episode
    seed: int
    num_envs: int
    seconds: float
    trajectories: list[Episode] | None = field(default=None, repr=False)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("trajectories")
        data["mean_return"] = self.mean_return
        data["std_return"] = self.std_return
        data["mean_length"] = float(np.mean(self.lengths))
        return data


def quotas(episodes: int, num_envs: int) -> list[int]:
    """Episodes per env: N split over min(K, N) envs as evenly as possible."""
    k = min(num_envs, episodes)
    return [episodes // k + (i < episodes % k) for i in range(k)]


def evaluate(
    game: str,
    policy: Policy,
    episodes: int,
    seed: int,
    num_envs: int = 8,
    cfg: EnvConfig | None = None,
    *,
    progress: bool | None = None,
    keep_trajectories: bool = False,
    asynchronous: bool = True,
) -> EvalResult:
    """Play exactly `episodes` test episodes with `policy`; envs seeded from `seed`.

    `progress=None` shows a bar only when stderr is a terminal. `keep_trajectories` also
    returns the counted episodes as `Episode`s (for the trainer's component evaluations).
    """
    game = check_game(game)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    quota = np.array(quotas(episodes, num_envs))
    n = len(quota)
    if progress is None:
        progress = sys.stderr.isatty()
    start_time = time.perf_counter()
    env = make_vector_env(game, n, seed=seed, cfg=cfg, asynchronous=asynchronous)
    try:
        obs, _ = env.reset()
        policy.reset(n)
        results = _play_quotas(
            env, obs, policy, quota, keep=keep_trajectories, progress=progress, game=game
        )
    finally:
        env.close()
    flat = [ep for per_env in results for ep in per_env]
    return EvalResult(
        game=game,
        episodes=episodes,
        returns=[ep.total_return for ep in flat],
        lengths=[ep.length for ep in flat],
        seed=seed,
        num_envs=n,
        seconds=time.perf_counter() - start_time,
        trajectories=[ep.episode for ep in flat] if keep_trajectories else None,
    )


def _play_quotas(
    env: gym.vector.VectorEnv,
    obs: np.ndarray,
    policy: Policy,
    quota: np.ndarray,
    *,
    keep: bool,
    progress: bool,
    game: str,
) -> list[list[FinishedEpisode]]:
    """Step every env until each has finished its quota -> per env, its counted episodes."""

    def step_envs(actions: np.ndarray):
        obs, rewards, terminated, truncated, _ = env.step(actions)
        return obs, rewards, terminated | truncated

    loop = EpisodeLoop(step_envs, obs)
    finished = np.zeros(len(quota), dtype=np.int64)
    results: list[list] = [[] for _ in quota]
    with tqdm(
        total=int(quota.sum()), desc=f"evaluate {game}", unit="ep", disable=not progress
    ) as bar:
        while (finished < quota).any():
            loop.keep = keep & (finished < quota)  # an env past its quota keeps nothing
            for ep in loop.step(policy):
                if finished[ep.env] < quota[ep.env]:
                    results[ep.env].append(ep)
                    bar.update(1)
                finished[ep.env] += 1
    return results
