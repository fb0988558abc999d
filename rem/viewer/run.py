"""A trained run folder, opened for watching: its game, config, agent and media folders.

Reads what `rem train` writes (rem.training.run_dir): `manifest.json` (game and resolved
config) and the committed checkpoint under `checkpoints/` (rem.training.checkpoint, verified
against its checksums); the agent is rebuilt with `build_agent` for the run's own config, so
every variant (no-POP world model, pixel actor-critic, 4x4 tokenizer) plays as it trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rem.config import Config, ConfigError, config_from_dict
from rem.envs.atari import action_meanings, make_env
from rem.training.run_dir import RunDir, RunDirError


class RunFolderError(ValueError):
    """The folder cannot be watched; the message says what is missing and what to do."""


@dataclass
class RunInfo:
    path: Path
    game: str
    cfg: Config
    meanings: list[str]

    @property
    def media_dir(self) -> Path:
        return self.path / "media"

    @property
    def episodes_dir(self) -> Path:
        return self.media_dir / "episodes"

    @property
    def recordings_dir(self) -> Path:
        return self.media_dir / "recordings"

    def make_env(self, seed: int):
        """The test env (the reference's play tool watches the test protocol too)."""
        return make_env(self.game, train=False, seed=seed, cfg=self.cfg.env)


def read_run(run_dir: str | Path) -> RunInfo:
    """Game and config of a run folder (enough to browse its episodes; no models loaded)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunFolderError(
            f"run folder {run.path} does not exist; pass the --run-dir of `rem train`"
        )
    try:
        manifest = run.read_manifest()
    except RunDirError as err:
        raise RunFolderError(str(err)) from err
    if manifest is None:
        raise RunFolderError(
            f"{run.path} has no manifest.json, so it is not a run folder written by `rem train`"
        )
    try:
        game = str(manifest["game"])
        cfg = config_from_dict(manifest["config"], source=str(run.manifest))
    except (KeyError, TypeError, ConfigError) as err:
        raise RunFolderError(f"{run.manifest} lacks a usable game/config ({err})") from err
    return RunInfo(run.path, game, cfg, list(action_meanings(game)))


def load_agent(info: RunInfo, device: torch.device) -> tuple[torch.nn.Module, int]:
    """The run's agent from its committed checkpoint, in eval mode -> (agent, epoch)."""
    from rem.models.agent import build_agent
    from rem.training.checkpoint import CheckpointError, load_checkpoint

    checkpoints = info.path / "checkpoints"
    try:
        state, _ = load_checkpoint(checkpoints, map_location=device)
    except CheckpointError as err:
        raise RunFolderError(
            f"{err}. A run can be watched once `rem train` has written its first checkpoint "
            f"(every run.checkpoint_every={info.cfg.run.checkpoint_every} epochs)"
        ) from err
    # The checkpoint holds the LPIPS tensors: no weight files are needed to watch a run.
    agent = build_agent(info.cfg, len(info.meanings), load_perceptual_weights=False).to(device)
    agent.load_state_dict(state["agent"])
    agent.eval()
    return agent, int(state["epoch"])
