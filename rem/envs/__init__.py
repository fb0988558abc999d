"""Atari envs (docs/protocol.md#environment): the train/test wrapper stack and parallel test envs."""

from rem.envs.atari import action_meanings, make_env, num_actions, raw_frame
from rem.envs.vector import make_vector_env

__all__ = ["action_meanings", "make_env", "make_vector_env", "num_actions", "raw_frame"]
