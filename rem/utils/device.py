"""The torch device of a run or a command: one resolver for every entry point."""

from __future__ import annotations

import torch

from rem.config import ConfigError


def resolve_device(name: str, option: str = "run.device") -> torch.device:
    """`auto` -> cuda when available, else cpu. A name torch does not know, or CUDA on a
    machine without it, is a ConfigError naming `option` (the config key or the flag that
    gave the name) and the fix."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(
            f"{option} {name!r} is not a torch device; use auto, cpu, cuda or cuda:N"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"{option} {name!r} asks for CUDA, but torch {torch.__version__} sees no CUDA "
            f"device; use {option} cpu (or auto) on this machine"
        )
    return device
