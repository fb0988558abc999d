"""Capture and restore every global random number generator a run touches.

Components with their own generators (sampler, policy epsilon draws, environments) save
those in their own state dicts; this module covers the process-wide ones.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels (CPU runs are then bit-reproducible on the same machine)."""
    if deterministic:
        # cuBLAS needs this to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(gen: np.random.Generator) -> dict[str, Any]:
    return gen.bit_generator.state


def set_generator_state(gen: np.random.Generator, state: dict[str, Any]) -> None:
    gen.bit_generator.state = state
