"""Non-interactive export of a view: an MP4 of its composed frames and a still PNG strip.

The still lays out the first frames of a rollout as columns (one per step) with a view's
panels as rows - for "real-vs-imagined": the real game on top, the world model below,
re-anchoring steps marked - which is what the README and the report embed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rem.utils.atomic import atomic_write_bytes
from rem.viewer.recording import write_mp4
from rem.viewer.render import Frame, compose, label_font, resize_nearest


def rollout(view, steps: int, *, episodes: int | None = None) -> list[Frame]:
    """Reset, then step `steps` times (resetting after each finished episode).

    Stops early after `episodes` finished episodes (None: no limit). Returns every shown frame
    (reset frames included).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    frames = [view.reset()]
    finished = 0
    for _ in range(steps):
        frame = view.step(frozenset())
        frames.append(frame)
        if view.episodic and frame.done:
            finished += 1
            if episodes is not None and finished >= episodes:
                break
            frames.append(view.reset())
    return frames


def play_episode(browser, steps: int) -> list[Frame]:
    """An episode browser's current episode from its first frame (at most `steps` steps)."""
    frames = [browser.reset()]
    browser.key("space")  # play
    for _ in range(min(steps, len(browser.episode) - 1)):
        frames.append(browser.step(frozenset()))
    return frames


def export_video(frames: list[Frame], out: str | Path, fps: float, header: bool) -> Path:
    return write_mp4(out, [compose(f, header=header) for f in frames], fps)


def strip(frames: list[Frame], columns: int, scale: int = 2) -> np.ndarray:
    """The first `columns` frames as a grid: a column per step, a row per panel, labelled.

    Panels are upscaled by `scale` (nearest). Returns uint8 (H, W, 3).
    """
    frames = frames[:columns]
    rows = [p.label for p in frames[0].panels]
    ph, pw = (s * scale for s in frames[0].panels[0].image.shape[:2])
    label_w, top, gap = 80, 16, 2
    height = top + len(rows) * (ph + gap)
    width = label_w + len(frames) * (pw + gap)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for c, frame in enumerate(frames):
        x = label_w + c * (pw + gap)
        for r, panel in enumerate(frame.panels):
            y = top + r * (ph + gap)
            canvas[y : y + ph, x : x + pw] = resize_nearest(panel.image, ph, pw)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for r, label in enumerate(rows):
        draw.text((4, top + r * (ph + gap) + ph // 2 - 6), label, fill=(0, 0, 0), font=label_font())
    for c, frame in enumerate(frames):
        anchored = bool(frame.extra.get("anchored"))
        text = f"t={frame.step}" + (" anchor" if anchored else "")
        draw.text((label_w + c * (pw + gap) + 2, 2), text, fill=(0, 0, 0), font=label_font())
    return np.asarray(image).copy()


def write_png(path: str | Path, image: np.ndarray) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"still output must end in .png, got {path}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path
