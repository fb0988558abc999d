"""The pygame loop: read keys, advance a view, draw, record. All game/model logic is in views.

One tick: collect events (from pygame, or any injected callable: tests pass a script) ->
handle the viewer's own keys -> `view.step(held keys)` unless paused or waiting for the
save prompt -> compose the frame (rem.viewer.render) -> record the clean canvas -> draw it
with window-only notices (REC, PAUSED, the prompt) -> wait for the next tick at `fps`.

Viewer keys: Enter = reset, '.' = pause, ',' = start/stop recording, Esc or q = quit.
Save mode: when an episode ends, "Save episode? [Y/n]" (y or Enter = save, n = discard);
kept episodes go to RUN_DIR/media/episodes/saved/ in the replay's episode format.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rem.viewer.recording import Recorder
from rem.viewer.render import Frame, compose, overlay_status

QUIT_KEYS = {"escape", "q"}
RESET_KEY = "return"
PAUSE_KEY = "."
RECORD_KEY = ","


class NoDisplayError(RuntimeError):
    """pygame has no video device to open a window on."""


class View(Protocol):
    """A frame source driven by the loop (see rem.viewer.views)."""

    title: str
    episodic: bool  # True: episodes end (auto reset or save prompt); False: a browser

    def reset(self) -> Frame: ...

    def step(self, held_keys: frozenset[str]) -> Frame: ...

    def key(self, name: str) -> Frame | None: ...


@dataclass
class ViewerResult:
    ticks: int = 0
    steps: int = 0
    episodes_finished: int = 0
    recordings: list[Path] = field(default_factory=list)
    saved_episodes: list[Path] = field(default_factory=list)
    last_canvas: np.ndarray | None = None


class ScriptedEvents:
    """An event source for tests and demos: {tick: [event, ...]} played back, then empty.

    Events are pygame events (`pygame.event.Event(pygame.KEYDOWN, key=pygame.K_d)`); see
    `key_events` for building them from key names.
    """

    def __init__(self, script: dict[int, list[Any]]):
        self.script = script
        self.tick = 0

    def __call__(self) -> list[Any]:
        events = self.script.get(self.tick, [])
        self.tick += 1
        return events


def key_events(*names: str, up: bool = True) -> list[Any]:
    """KEYDOWN (and KEYUP) events for key names as `pygame.key.name` spells them."""
    import pygame

    if not pygame.display.get_init():  # key codes need an initialised video subsystem
        pygame.display.init()
    events = []
    for name in names:
        code = pygame.key.key_code(name)
        events.append(pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode=""))
        if up:
            events.append(pygame.event.Event(pygame.KEYUP, key=code, mod=0, unicode=""))
    return events


class Viewer:
    """Runs a `View` in a pygame window (SDL_VIDEODRIVER=dummy works headless)."""

    def __init__(
        self,
        view: View,
        *,
        fps: float = 15.0,
        header: bool = False,
        recorder: Recorder | None = None,
        save_episode: Callable[[list[Frame]], Path] | None = None,
        events: Callable[[], Iterable[Any]] | None = None,
        window_height: int = 800,
        max_ticks: int | None = None,
    ):
        self.view = view
        self.fps = fps
        self.header = header
        self.recorder = recorder
        self.save_episode = save_episode  # save mode when set
        self.events = events
        self.window_height = window_height
        self.max_ticks = max_ticks

        self.held: set[str] = set()
        self.paused = False
        self.asking = False  # the save prompt is up
        self.pending_reset = False
        self.episode: list[Frame] = []
        self.frame: Frame | None = None
        self.result = ViewerResult()

    # ---------------------------------------------------------------- the viewer's own logic

    def _reset(self) -> None:
        self.frame = self.view.reset()
        self.episode = [self.frame]
        self.asking = False
        self.pending_reset = False

    def _on_key(self, name: str) -> bool:
        """Handle a key press; returns False to quit."""
        if name in QUIT_KEYS:
            return False
        if self.asking:
            if name in ("y", RESET_KEY, "n"):
                if name != "n":
                    self.result.saved_episodes.append(self.save_episode(self.episode))
                self._reset()
            return True
        if name == RESET_KEY:
            self._reset()
        elif name == PAUSE_KEY:
            self.paused = not self.paused
        elif name == RECORD_KEY and self.recorder is not None:
            path = self.recorder.toggle()
            if path is not None:
                self.result.recordings.append(path)
        else:
            frame = self.view.key(name)
            if frame is not None:
                self.frame = frame
        return True

    def _advance(self, held: frozenset[str]) -> None:
        if self.paused or self.asking:
            return
        if self.pending_reset:
            self._reset()
            return
        self.frame = self.view.step(held)
        self.result.steps += 1
        self.episode.append(self.frame)
        if self.view.episodic and self.frame.done:
            self.result.episodes_finished += 1
            if self.save_episode is not None:
                self.asking = True
            else:
                self.pending_reset = True  # show the final frame for one tick

    def _status(self) -> str:
        notices = []
        if self.recorder is not None and self.recorder.active:
            notices.append("REC")
        if self.paused:
            notices.append("PAUSED")
        if self.asking:
            notices.append("Save episode? [Y/n]")
        return "  ".join(notices)

    # ---------------------------------------------------------------- the pygame loop

    def run(self) -> ViewerResult:
        import pygame

        try:
            pygame.display.init()
        except pygame.error as err:
            raise NoDisplayError(
                f"pygame cannot open a window ({err}). Without a display, set "
                "SDL_VIDEODRIVER=dummy (with --max-ticks/--script), or export with `rem video`"
            ) from err
        get_events = self.events or pygame.event.get
        pygame.display.set_caption(f"rem play - {self.view.title}")
        clock = pygame.time.Clock()
        screen = None
        self._reset()
        running = True
        try:
            while running:
                pressed_now: set[str] = set()
                for event in get_events():
                    if event.type == pygame.QUIT:
                        running = False
                    elif event.type == pygame.KEYDOWN:
                        name = pygame.key.name(event.key)
                        self.held.add(name)
                        pressed_now.add(name)
                        running = self._on_key(name) and running
                    elif event.type == pygame.KEYUP:
                        self.held.discard(pygame.key.name(event.key))
                if not running:
                    break
                # A key pressed and released within one tick still counts for this step.
                self._advance(frozenset(self.held | pressed_now))

                canvas = compose(self.frame, header=self.header)
                if self.recorder is not None:
                    self.recorder.add(canvas)
                screen = self._draw(pygame, screen, overlay_status(canvas, self._status()))
                self.result.last_canvas = canvas
                self.result.ticks += 1
                if self.max_ticks is not None and self.result.ticks >= self.max_ticks:
                    break
                clock.tick(self.fps)
        finally:
            if self.recorder is not None and self.recorder.active:
                path = self.recorder.stop()  # never lose a recording on quit
                if path is not None:
                    self.result.recordings.append(path)
            pygame.display.quit()
        return self.result

    def _draw(self, pygame: Any, screen: Any, canvas: np.ndarray) -> Any:
        h, w = canvas.shape[:2]
        scale = max(1, self.window_height // h)
        size = (w * scale, h * scale)
        if screen is None or screen.get_size() != size:
            screen = pygame.display.set_mode(size)
        surface = pygame.surfarray.make_surface(canvas.transpose(1, 0, 2))
        screen.blit(pygame.transform.scale(surface, size), (0, 0))
        pygame.display.flip()
        return screen


def headless() -> None:
    """Use SDL's dummy video driver (tests, machines without a display)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
