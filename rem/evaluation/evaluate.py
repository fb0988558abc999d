"""Run exactly N full test episodes of a policy on parallel test envs
(docs/protocol.md#evaluation-and-the-score-of-a-run).

The reference waits until every env finished an episode and keeps them all (100 requested
with 8 envs -> 104). Here each env gets a fixed quota decided before any episode starts
(N // K, plus one for the first N % K envs), so exactly N episodes count; an env that met
its quota keeps stepping with the others but its further episodes are ignored. Because the
quota is fixed up front, short episodes are not favoured over long ones.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from rem.config import EnvConfig
from rem.data.episode import Episode
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
        finished = np.zeros(n, dtype=np.int64)
        running_return = np.zeros(n, dtype=np.float64)
        running_length = np.zeros(n, dtype=np.int64)
        results: list[list[tuple[float, int, Episode | None]]] = [[] for _ in range(n)]
        steps: list[list[tuple]] = [[] for _ in range(n)]  # kept steps of running episodes
        bar = tqdm(total=episodes, desc=f"evaluate {game}", unit="ep", disable=not progress)
        while (finished < quota).any():
            frames = np.ascontiguousarray(obs.transpose(0, 3, 1, 2))  # (n,h,w,3) -> (n,3,h,w)
            actions = np.asarray(policy.act(frames), dtype=np.int64)
            obs, rewards, terminated, truncated, _ = env.step(actions)
            done = terminated | truncated
            running_return += rewards
            running_length += 1
            for i in range(n):
                if keep_trajectories and finished[i] < quota[i]:
                    steps[i].append((frames[i], actions[i], rewards[i], done[i]))
                if not done[i]:
                    continue
                if finished[i] < quota[i]:
                    trajectory = _to_episode(steps[i]) if keep_trajectories else None
                    results[i].append(
                        (float(running_return[i]), int(running_length[i]), trajectory)
                    )
                    bar.update(1)
                finished[i] += 1
                steps[i] = []
                running_return[i] = 0.0
                running_length[i] = 0
            if done.any():
                policy.reset_rows(done)
        bar.close()
    finally:
        env.close()
    flat = [r for per_env in results for r in per_env]
    return EvalResult(
        game=game,
        episodes=episodes,
        returns=[r[0] for r in flat],
        lengths=[r[1] for r in flat],
        seed=seed,
        num_envs=n,
        seconds=time.perf_counter() - start_time,
        trajectories=[r[2] for r in flat] if keep_trajectories else None,
    )


def _to_episode(steps: list[tuple]) -> Episode:
    frames, actions, rewards, ends = zip(*steps)
    return Episode(np.stack(frames), np.array(actions), np.array(rewards), np.array(ends))
