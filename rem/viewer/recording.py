"""Writing what a viewer shows: MP4 through imageio's bundled ffmpeg, and raw NumPy arrays.

Both writes are atomic (encode into a temporary folder, then `atomic_write_bytes` into
place), so an interrupted recording never leaves a half-written file in `media/recordings/`.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from rem.utils.atomic import atomic_write_bytes
from rem.viewer.render import even_size


def write_mp4(path: str | Path, frames: list[np.ndarray] | np.ndarray, fps: float) -> Path:
    """Encode uint8 frames (t, h, w, 3) to an H.264 MP4 at `path` (padded to 16-pixel multiples)."""
    path = Path(path)
    if len(frames) == 0:
        raise ValueError(f"no frames to write to {path}")
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"video output must end in .mp4, got {path}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "video.mp4"
        writer = imageio.get_writer(
            tmp_path,
            fps=fps,
            codec="libx264",
            quality=8,
            macro_block_size=16,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(even_size(np.asarray(frame, dtype=np.uint8)))
        finally:
            writer.close()
        atomic_write_bytes(path, tmp_path.read_bytes())
    return path


def write_npy(path: str | Path, frames: list[np.ndarray] | np.ndarray) -> Path:
    """Save uint8 frames (t, h, w, 3) as one .npy array."""
    buffer = io.BytesIO()
    np.save(buffer, np.stack([np.asarray(f, dtype=np.uint8) for f in frames]))
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode an MP4 into uint8 (t, h, w, 3) (used by tests and for checking exports)."""
    return np.stack(list(imageio.mimread(path, memtest=False)))


class Recorder:
    """Toggled recording of composed canvases into `folder/<timestamp>.{mp4,npy}`.

    Canvases of one recording must share a size (a view keeps its layout fixed).
    """

    def __init__(self, folder: str | Path, fps: float = 15.0):
        self.folder = Path(folder)
        self.fps = fps
        self.frames: list[np.ndarray] | None = None
        self.saved: list[Path] = []  # mp4 paths written so far

    @property
    def active(self) -> bool:
        return self.frames is not None

    def toggle(self) -> Path | None:
        """Start a recording, or stop the current one and return its MP4 path."""
        if self.frames is None:
            self.frames = []
            return None
        return self.stop()

    def add(self, canvas: np.ndarray) -> None:
        if self.frames is not None:
            self.frames.append(canvas)

    def stop(self) -> Path | None:
        """Write the current recording (if it has frames) and stop recording."""
        frames, self.frames = self.frames, None
        if not frames:
            return None
        stem = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stem}.mp4"
        n = 1
        while path.exists():  # two recordings within one second
            path = self.folder / f"{stem}-{n}.mp4"
            n += 1
        write_npy(path.with_suffix(".npy"), frames)
        write_mp4(path, frames, self.fps)
        self.saved.append(path)
        return path
