"""Seeds of a run: one derived seed per purpose, and the process-wide generators.

Every purpose of a run (train env, samplers, train and test policies, each evaluation) gets
its own seed from the run seed with `derived_seed`, so changing one use of randomness never
shifts another. Components with their own generators (sampler, policy epsilon draws,
environments) save those in their own state dicts; `rng_state` / `set_rng_state` capture and
restore the process-wide ones for checkpoints.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

# Purposes of derived seeds (the first part after the run seed).
SEED_TRAIN_ENV, SEED_SAMPLER, SEED_TRAIN_POLICY, SEED_TEST_POLICY, SEED_EVAL = range(1, 6)
FINAL = 10**6  # "epoch" of the final evaluation's seed


def derived_seed(*parts: int) -> int:
    """A 32-bit seed for one purpose (env, sampler, evaluation at epoch e) of a run seed."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


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


def numpy_global_state() -> dict[str, Any]:
    """numpy's global generator as plain types (its own form holds an ndarray, which
    `torch.load(weights_only=True)` refuses): the 624 MT19937 words as little-endian bytes."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "bit_generator": str(name),
        "keys": np.asarray(keys, dtype="<u4").tobytes(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_numpy_global_state(state: dict[str, Any]) -> None:
    keys = np.frombuffer(state["keys"], dtype="<u4").astype(np.uint32)
    np.random.set_state(
        (state["bit_generator"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    )


def rng_state() -> dict[str, Any]:
    """The process-wide generators in plain types (safe to load without running code)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy_global_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    set_numpy_global_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
