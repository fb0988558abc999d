"""Saved episode files: finding them in a run folder, reading them, writing kept episodes.

The trainer writes `media/episodes/{train,test,imagination}/[best_]episode_<id>_epoch_<e>.pt`
(rem.training.media): a dict of tensors observations uint8 (t, 3, 64, 64), actions int64
(t,), rewards float32 (t,), ends uint8 (t,), mask_padding bool (t,). Save mode writes the
same format into `media/episodes/saved/`, so the browser shows kept episodes too.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import torch

from rem.data.episode import Episode
from rem.training.media import episode_dict
from rem.utils.atomic import atomic_torch_save
from rem.viewer.render import Frame

SETS = ("train", "test", "imagination", "saved")
_ID = re.compile(r"episode_(\d+)")


def episode_files(episodes_dir: Path, kind: str) -> list[Path]:
    """The set's episode files ordered by episode id (best_* after the regular ones)."""

    def order(path: Path) -> tuple[int, int, str]:
        match = _ID.search(path.name)
        return (path.name.startswith("best_"), int(match.group(1)) if match else -1, path.name)

    return sorted((Path(episodes_dir) / kind).glob("*.pt"), key=order)


def load_episode(path: Path) -> Episode:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        episode = Episode(
            data["observations"].numpy(),
            data["actions"].numpy(),
            data["rewards"].numpy(),
            data["ends"].numpy(),
        )
    except (KeyError, AttributeError, TypeError, ValueError, RuntimeError, OSError) as err:
        raise ValueError(
            f"{path} is not an episode file (a dict of episode tensors, as in media/episodes): {err}"
        ) from err
    if len(episode) == 0:
        raise ValueError(f"{path} holds an empty episode")
    return episode


def episode_from_frames(frames: list[Frame]) -> Episode:
    """A played episode -> replay format: observation t with the action taken at it.

    frames[0] is the reset frame; frames[i] (i >= 1) shows the result of action frames[i].action.
    The final observation (after the last action) is not stored, as in the replay.
    """
    if len(frames) < 2:
        raise ValueError("an episode needs at least one step to be saved")
    return Episode(
        np.stack([f.observation for f in frames[:-1]]).astype(np.uint8),
        np.array([f.action for f in frames[1:]], dtype=np.int64),
        np.array([f.reward for f in frames[1:]], dtype=np.float32),
        np.array([f.done for f in frames[1:]], dtype=np.uint8),
    )


def save_episode(episodes_dir: Path, frames: list[Frame]) -> Path:
    """Write a played episode to `episodes_dir/saved/episode_<unix ms>.pt`; returns the path."""
    path = Path(episodes_dir) / "saved" / f"episode_{time.time_ns() // 1_000_000}.pt"
    atomic_torch_save(path, episode_dict(episode_from_frames(frames)))
    return path
