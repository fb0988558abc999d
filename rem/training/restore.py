"""Open a run folder written by `rem train`: its game, config and trained agent.

The one loader of run folders for every reader that needs torch (`rem evaluate --checkpoint`,
`rem wm-eval`, `rem play`, `rem video`, `rem diagnose`); the folder's layout and its
torch-free files are rem.runs'. `read_run` reads the manifest (game and resolved config) without
loading any model, enough to browse a run's media; `load_agent` rebuilds the agent with
`build_agent` for the run's own config, so every variant (no-POP world model, pixel
actor-critic, 4x4 tokenizer) comes back as it trained, and loads the committed checkpoint's
weights; `open_run` does both, and `latest_replay` loads the replay of the newest committed
checkpoint. Problems with the folder raise `RunDirError`, problems with the checkpoint
`CheckpointError`, each naming what is missing and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rem.config import Config, ConfigError, config_from_dict
from rem.envs.atari import action_meanings, make_env
from rem.runs import layout
from rem.training.checkpoint import (
    REPLAY,
    CheckpointError,
    UnsafeStateError,
    load_checkpoint,
    read_latest,
)
from rem.training.run_dir import RunDir, RunDirError


@dataclass
class RunInfo:
    """A run folder as written by `rem train`, opened to rebuild its agent and env: the
    resolved config, the manifest and the game's actions (torch side; rem.runs.files reads
    the same files without torch, rem.training.run_dir.RunDir writes them)."""

    path: Path
    game: str
    cfg: Config
    manifest: dict[str, Any]
    meanings: list[str]  # the game's action meanings, in action-index order

    @property
    def media_dir(self) -> Path:
        return self.path / layout.MEDIA

    @property
    def episodes_dir(self) -> Path:
        return self.media_dir / layout.EPISODES

    @property
    def recordings_dir(self) -> Path:
        return self.media_dir / layout.RECORDINGS

    def make_env(self, seed: int):
        """The run's test env (the reference's play tool watches the test protocol too)."""
        return make_env(self.game, train=False, seed=seed, cfg=self.cfg.env)


def read_run(run_dir: str | Path) -> RunInfo:
    """Game, config and manifest of a run folder (no models loaded)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunDirError(
            f"run folder {run.path} does not exist; pass the --run-dir of `rem train`"
        )
    manifest = run.read_manifest()
    if manifest is None:
        raise RunDirError(
            f"{run.path} has no manifest.json, so it is not a run folder written by `rem train`"
        )
    try:
        game = str(manifest["game"])
        cfg = config_from_dict(manifest["config"], source=str(run.manifest))
    except (KeyError, TypeError, ConfigError) as err:
        raise RunDirError(f"{run.manifest} lacks a usable game/config ({err})") from err
    return RunInfo(run.path, game, cfg, manifest, list(action_meanings(game)))


def load_agent(info: RunInfo, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, int]:
    """The run's agent in eval mode with its committed checkpoint's weights -> (agent, epoch).

    The checkpoint's state.pt is verified (size, SHA-256) first; the replay is neither needed
    nor read. The checkpoint holds the LPIPS tensors, so no weight files are needed.
    """
    from rem.models.agent import build_agent

    checkpoints = info.path / layout.CHECKPOINTS
    try:
        state, _ = load_checkpoint(checkpoints, map_location=device, replay=False)
    except UnsafeStateError:
        raise  # the fix is the convert command it names, not waiting for a checkpoint
    except CheckpointError as err:
        raise CheckpointError(
            f"{err}. A run's agent can be loaded once `rem train` has written its first "
            f"checkpoint (every run.checkpoint_every={info.cfg.run.checkpoint_every} epochs)"
        ) from err
    agent = build_agent(info.cfg, len(info.meanings), load_perceptual_weights=False)
    try:
        agent.load_state_dict(state["agent"])
    except RuntimeError as err:
        raise CheckpointError(
            f"the checkpoint in {checkpoints} does not fit the config in "
            f"{info.path / layout.MANIFEST}: {err}"
        ) from err
    return agent.to(device).eval(), int(state["epoch"])


def open_run(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config, dict[str, Any]]:
    """-> (agent in eval mode, its config, the manifest with `checkpoint_epoch` added)."""
    info = read_run(run_dir)
    agent, epoch = load_agent(info, device)
    return agent, info.cfg, {**info.manifest, "checkpoint_epoch": epoch}


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder of the run's newest committed checkpoint; None before the first one."""
    checkpoints = Path(run_dir) / layout.CHECKPOINTS
    record = read_latest(checkpoints)
    return None if record is None else checkpoints / record["name"]


def latest_replay(run_dir: str | Path):
    """The replay of the run's newest committed checkpoint (rem.data.replay.Replay)."""
    from rem.data.replay import Replay

    folder = latest_checkpoint(run_dir)
    if folder is None:
        raise CheckpointError(f"{run_dir} has no committed checkpoint yet: wait for the first one")
    return Replay.load(folder / REPLAY)
