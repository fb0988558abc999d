"""What a viewer shows, as plain NumPy images: no pygame, so `rem video` and tests share it.

A frame source produces a `Frame` (one or more labelled panels plus what happened at that
step); `compose` lays the panels side by side at a common size, optionally under a header
with the step, action, reward, return and done flag. `overlay_status` writes transient
notices (recording, paused, save prompt) on a copy of the canvas for the window only, so
recordings stay clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_PANEL_HEIGHT = 160  # 64x64 observations are upscaled by an integer factor to at least this
LABEL_HEIGHT = 14
LINE_HEIGHT = 14
PAD = 2


@dataclass
class Panel:
    """One image of a view. image: uint8 (h, w, 3) HWC."""

    label: str
    image: np.ndarray


@dataclass
class Frame:
    """One step of a view.

    observation: uint8 (3, 64, 64) CHW - what the policy saw (or the world model produced) at
    this step, kept so save mode can store the episode in the replay format. action is the
    action taken *at* this frame (None before the first step of a view that has not acted yet);
    reward and done are what that action earned.
    """

    panels: list[Panel]
    step: int = 0
    action: int | None = None
    action_name: str = ""
    reward: float = 0.0
    episode_return: float = 0.0
    done: bool = False
    info: str = ""
    observation: np.ndarray | None = None
    extra: dict[str, object] = field(default_factory=dict)


@cache
def label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=11)


def chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """uint8 (3, h, w) -> (h, w, 3), contiguous."""
    return np.ascontiguousarray(np.asarray(x).transpose(1, 2, 0))


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (h, w, 3) -> (height, width, 3), nearest neighbour (keeps pixels crisp)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.NEAREST))


def panel_size(panels: list[Panel]) -> tuple[int, int]:
    """Common (height, width): the largest panel, integer-upscaled to >= MIN_PANEL_HEIGHT."""
    height = max(p.image.shape[0] for p in panels)
    width = max(p.image.shape[1] for p in panels)
    factor = max(1, -(-MIN_PANEL_HEIGHT // height))
    return height * factor, width * factor


def header_lines(frame: Frame) -> list[str]:
    action = "-" if frame.action is None else f"{frame.action} {frame.action_name}"
    lines = [
        f"step {frame.step}  action {action}",
        f"reward {frame.reward:g}  return {frame.episode_return:g}  done {int(frame.done)}",
    ]
    if frame.info:
        lines.append(frame.info)
    return lines


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], x: int, y: int) -> None:
    for i, line in enumerate(lines):
        draw.text((x, y + i * LINE_HEIGHT), line, fill=(255, 255, 255), font=label_font())


def header_height(num_lines: int) -> int:
    return num_lines * LINE_HEIGHT + 2 * PAD


def compose(frame: Frame, header: bool = False, header_rows: int = 3) -> np.ndarray:
    """Lay out a frame: [header] over panels side by side (labels under each if > 1 panel).

    Returns uint8 (H, W, 3). The header always reserves `header_rows` lines so the canvas
    size does not change from step to step (video encoders need a fixed size).
    """
    if not frame.panels:
        raise ValueError("a frame needs at least one panel")
    height, width = panel_size(frame.panels)
    labelled = len(frame.panels) > 1
    top = header_height(header_rows) if header else 0
    total_h = top + height + (LABEL_HEIGHT if labelled else 0)
    total_w = len(frame.panels) * width + (len(frame.panels) - 1) * PAD
    canvas = np.zeros((total_h, total_w, 3), dtype=np.uint8)
    for i, panel in enumerate(frame.panels):
        x = i * (width + PAD)
        canvas[top : top + height, x : x + width] = resize_nearest(panel.image, height, width)
    if not (header or labelled):
        return canvas
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    if header:
        _draw_lines(draw, header_lines(frame)[:header_rows], PAD, PAD)
    if labelled:
        for i, panel in enumerate(frame.panels):
            _draw_lines(draw, [panel.label], i * (width + PAD) + PAD, top + height)
    return np.asarray(image).copy()


def overlay_status(canvas: np.ndarray, text: str) -> np.ndarray:
    """Copy of the canvas with `text` in a black box at the bottom left (window-only notices)."""
    if not text:
        return canvas
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=label_font())
    y = canvas.shape[0] - (bottom - top) - 3 * PAD
    draw.rectangle((0, y, right + 2 * PAD, canvas.shape[0]), fill=(0, 0, 0))
    draw.text((PAD, y + PAD - top), text, fill=(255, 64, 64), font=label_font())
    return np.asarray(image).copy()


def even_size(canvas: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Pad (h, w, 3) with black to multiples of `multiple` (H.264 needs even sizes; 16 = no rescale)."""
    h, w = canvas.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return canvas
    return np.pad(canvas, ((0, ph), (0, pw), (0, 0)))
