"""Run media: tokenizer reconstruction PNGs and saved episodes (docs/protocol.md#evaluation-block).

media/reconstructions/epoch_{e:03d}_t_{i:03d}.png   samples stacked vertically,
                                                   original | reconstruction per row
media/episodes/{train,test,imagination}/episode_{id}_epoch_{e}.pt
                                                   (+ one best_episode_*.pt per set)
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image

from rem.utils.atomic import atomic_torch_save, atomic_write_bytes

KEEP = {"train": 10, "test": 10, "imagination": 128}
_NAME = re.compile(r"^episode_(\d+)_epoch_(\d+)\.pt$")


def save_reconstructions(
    folder: Path, epoch: int, originals: torch.Tensor, reconstructions: torch.Tensor
) -> list[Path]:
    """originals, reconstructions: float (n, t, 3, 64, 64) in [0, 1] -> t PNGs of (n*64, 2*64)."""
    pair = torch.cat([originals, reconstructions], dim=-1)  # n t c h (2w)
    grid = rearrange(pair, "n t c h w -> t (n h) w c")
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    paths = []
    for i, frame in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        path = folder / f"epoch_{epoch:03d}_t_{i:03d}.png"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths


def episode_dict(episode: Any) -> dict[str, torch.Tensor]:
    """An `Episode` (numpy fields) -> the five tensors the reference stores."""
    n = len(episode.actions)
    return {
        "observations": torch.from_numpy(np.asarray(episode.observations)),
        "actions": torch.from_numpy(np.asarray(episode.actions)),
        "rewards": torch.from_numpy(np.asarray(episode.rewards)),
        "ends": torch.from_numpy(np.asarray(episode.ends)),
        "mask_padding": torch.ones(n, dtype=torch.bool),
    }


class EpisodeSaver:
    """Keeps the `keep` most recent episodes of one set (by id) plus the best one seen."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder = Path(folder) / kind
        self.keep = KEEP[kind]
        self.best_return = -float("inf")
        best = sorted(self.folder.glob("best_episode_*.pt"))
        if best:  # a resumed run keeps competing against the saved best
            self.best_return = float(torch.load(best[-1], weights_only=True)["rewards"].sum())

    def save(self, episode: Any, episode_id: int, epoch: int) -> None:
        data = episode_dict(episode)
        atomic_torch_save(self.folder / f"episode_{episode_id}_epoch_{epoch}.pt", data)
        ret = float(data["rewards"].sum())
        if ret > self.best_return:
            self.best_return = ret
            for old in self.folder.glob("best_episode_*.pt"):
                old.unlink()
            atomic_torch_save(self.folder / f"best_episode_{episode_id}_epoch_{epoch}.pt", data)
        saved = sorted(
            (int(m.group(1)), p)
            for p in self.folder.glob("episode_*.pt")
            if (m := _NAME.match(p.name))
        )
        for _, path in saved[: max(0, len(saved) - self.keep)]:
            path.unlink()
