"""Load a trained agent from a run folder (for `rem evaluate --checkpoint`, the viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rem.config import Config, config_from_dict
from rem.training.checkpoint import CheckpointError, load_checkpoint
from rem.training.run_dir import RunDir, RunDirError


def load_run_agent(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config, dict[str, Any]]:
    """-> (agent in eval mode with the last checkpoint's weights, its config, the manifest).

    The checkpoint's state.pt is verified (size, SHA-256) first; its replay is not needed and
    not read. The LPIPS tensors come from the checkpoint, so no weight download is needed.
    """
    from rem.envs.atari import num_actions
    from rem.models.agent import build_agent

    run = RunDir(run_dir)
    manifest = run.read_manifest()
    if manifest is None:
        raise RunDirError(
            f"{run.path} has no manifest.json: not a run folder written by `rem train`"
        )
    cfg = config_from_dict(manifest["config"], source=str(run.manifest))
    state, _ = load_checkpoint(run.checkpoints, map_location=device, replay=False)
    agent = build_agent(cfg, num_actions(manifest["game"]), load_perceptual_weights=False)
    try:
        agent.load_state_dict(state["agent"])
    except RuntimeError as err:
        raise CheckpointError(
            f"the checkpoint in {run.checkpoints} does not fit the config in {run.manifest}: {err}"
        ) from err
    agent.to(device).eval()
    manifest["checkpoint_epoch"] = state["epoch"]
    return agent, cfg, manifest
