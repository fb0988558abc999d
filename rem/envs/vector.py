"""Parallel test envs: one subprocess per env (gymnasium AsyncVectorEnv).

Envs reset themselves in the step that ends an episode (`AutoresetMode.SAME_STEP`): the
returned observation is already the first frame of the next episode, so a recurrent policy
never sees a finished game's last frame as the start of a new one. Each env gets its own
seed derived from the evaluation seed, so a run is reproducible.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from rem.config import EnvConfig
from rem.envs.atari import make_env


def env_seeds(seed: int, n: int) -> list[int]:
    """`n` independent 32-bit seeds derived from one seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def make_vector_env(
    game: str,
    num_envs: int,
    *,
    seed: int,
    cfg: EnvConfig | None = None,
    train: bool = False,
    asynchronous: bool = True,
    context: str | None = "forkserver",
) -> gym.vector.VectorEnv:
    """`num_envs` copies of `make_env(game, train=train)`, env i seeded with `env_seeds(seed)[i]`.

    `context` is the multiprocessing start method; forkserver (not fork) because the parent
    may hold CUDA or OpenMP threads. `asynchronous=False` runs them in-process (tests).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    cfg = cfg or EnvConfig()
    fns = [
        functools.partial(make_env, game, train=train, seed=s, cfg=cfg)
        for s in env_seeds(seed, num_envs)
    ]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, context=context, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
