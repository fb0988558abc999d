"""Frame sources for the viewer modes: game/model logic only, no pygame.

Each view has `reset() -> Frame`, `step(held_keys) -> Frame` and `key(name) -> Frame | None`
(mode keys such as the browser's arrows). `held_keys` are key names as `pygame.key.name`
spells them; views that do not take keyboard actions ignore them. The pygame loop
(rem.viewer.app) and `rem video` (rem.viewer.video) both drive these.

Live views report in each frame the action that led to it and the reward/done it earned;
the episode browser reports the action taken *at* the shown frame (the replay's layout).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rem.data.episode import Episode
from rem.envs.atari import raw_frame
from rem.viewer.dream import DreamSession
from rem.viewer.episodes import SETS, episode_files, load_episode
from rem.viewer.keymap import KeyMap
from rem.viewer.render import Frame, Panel, chw_to_hwc

if TYPE_CHECKING:
    from rem.policy import Policy


def _chw(obs: np.ndarray) -> np.ndarray:
    """Env observation uint8 (64, 64, 3) -> (3, 64, 64)."""
    return np.ascontiguousarray(np.asarray(obs, dtype=np.uint8).transpose(2, 0, 1))


class _RealGame:
    """The real (test) env with episode bookkeeping; observations kept CHW."""

    def __init__(self, env, seed: int):
        self.env = env
        self.seed: int | None = seed  # used on the first reset only: later games differ
        self.obs = np.zeros((3, 64, 64), np.uint8)

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.seed)
        self.seed = None
        self.obs = _chw(obs)
        return self.obs

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self.obs = _chw(obs)
        return self.obs, float(reward), bool(terminated or truncated)

    def raw(self) -> np.ndarray:
        return raw_frame(self.env)


class AgentGameView:
    """The agent plays the real game; with `reconstruct`, three panels: raw | 64x64 obs | recon."""

    episodic = True

    def __init__(
        self,
        env,
        policy: Policy,
        meanings: list[str],
        *,
        seed: int = 0,
        reconstruct=None,
    ):
        self.game = _RealGame(env, seed)
        self.policy = policy
        self.meanings = meanings
        self.reconstruct = reconstruct  # uint8 (n, 3, 64, 64) -> uint8 (n, 3, 64, 64), or None
        self.title = "agent in the real game" + (" (panels)" if reconstruct else "")
        self.steps = 0
        self.episode_return = 0.0

    def _frame(self, action: int | None, reward: float, done: bool) -> Frame:
        obs = self.game.obs
        if self.reconstruct is None:
            panels = [Panel("game", self.game.raw())]
        else:
            recon = self.reconstruct(obs[None])[0]
            panels = [
                Panel("raw frame", self.game.raw()),
                Panel("64x64 observation", chw_to_hwc(obs)),
                Panel("reconstruction", chw_to_hwc(recon)),
            ]
        name = "" if action is None else self.meanings[action]
        return Frame(
            panels, self.steps, action, name, reward, self.episode_return, done, observation=obs
        )

    def reset(self) -> Frame:
        self.game.reset()
        self.policy.reset(1)
        self.steps, self.episode_return = 0, 0.0
        return self._frame(None, 0.0, False)

    def step(self, held_keys: frozenset[str] = frozenset()) -> Frame:
        action = int(self.policy.act(self.game.obs[None])[0])
        _, reward, done = self.game.step(action)
        self.steps += 1
        self.episode_return += reward
        return self._frame(action, reward, done)

    def key(self, name: str) -> Frame | None:
        return None


Driver = Literal["human", "agent", "agent-real"]


class WorldModelView:
    """Acting inside the world model, the real game stepped alongside with the same actions.

    driver "human": the keyboard picks actions (KeyMap); "agent": the agent acts on the
    imagined frames; "agent-real": the agent acts on the real frames and both worlds receive
    its actions (the real-vs-imagined comparison). The world model starts from the real
    game's first two frames and is re-anchored on the latest real frames whenever its block
    budget is used up (DreamSession). Reward in the header is the imagined one; the episode
    ends when the real game ends (the model cannot continue past it).
    """

    episodic = True

    def __init__(
        self,
        env,
        dream: DreamSession,
        meanings: list[str],
        driver: Driver,
        *,
        policy: Policy | None = None,
        seed: int = 0,
    ):
        if driver != "human" and policy is None:
            raise ValueError(f"driver {driver!r} needs a policy")
        self.game = _RealGame(env, seed)
        self.dream = dream
        self.meanings = meanings
        self.driver = driver
        self.policy = policy
        self.keymap = KeyMap(meanings)
        self.title = {
            "human": "you in the world model",
            "agent": "agent in the world model",
            "agent-real": "real vs imagined",
        }[driver]
        self.prev_obs = self.imagined = np.zeros((3, 64, 64), np.uint8)
        self.prev_action = 0
        self.steps = 0
        self.episode_return = 0.0

    def _frame(
        self, action: int | None, reward: float, done: bool, info: str, anchored: bool
    ) -> Frame:
        imagined = Panel("world model", chw_to_hwc(self.imagined))
        real = Panel("real game", chw_to_hwc(self.game.obs))
        panels = [real, imagined] if self.driver == "agent-real" else [imagined, real]
        name = "" if action is None else self.meanings[action]
        return Frame(
            panels,
            self.steps,
            action,
            name,
            reward,
            self.episode_return,
            done,
            info=info,
            observation=self.imagined,
            extra={"anchored": anchored},
        )

    def _info(self, extra: str = "") -> str:
        used = f"wm {self.dream.steps_since_anchor}/{self.dream.budget} steps since anchor"
        return f"{used}{extra}"

    def reset(self) -> Frame:
        # Two real frames to anchor on: the reset frame, then one NOOP step.
        done = True
        while done:
            self.prev_obs = self.game.reset()
            _, _, done = self.game.step(0)
        self.prev_action = 0
        self.imagined = self.dream.anchor(self.prev_obs, self.game.obs, self.prev_action)
        if self.policy is not None:
            self.policy.reset(1)
        self.steps, self.episode_return = 0, 0.0
        return self._frame(None, 0.0, False, self._info(" (anchored on real frames)"), True)

    def _choose(self, held_keys: frozenset[str]) -> int:
        if self.driver == "human":
            return self.keymap.action(held_keys)
        seen = self.imagined if self.driver == "agent" else self.game.obs
        return int(self.policy.act(seen[None])[0])

    def step(self, held_keys: frozenset[str] = frozenset()) -> Frame:
        action = self._choose(held_keys)
        anchored = self.dream.needs_anchor
        if anchored:
            self.dream.anchor(self.prev_obs, self.game.obs, self.prev_action)
        note = " (re-anchored on real frames)" if anchored else ""
        self.imagined, reward, wm_done = self.dream.step(action)
        self.prev_obs = self.game.obs
        _, real_reward, real_done = self.game.step(action)
        self.prev_action = action
        self.steps += 1
        self.episode_return += reward
        info = self._info(f"{note} | real reward {real_reward:g} | wm done {int(wm_done)}")
        return self._frame(action, reward, real_done, info, anchored)

    def key(self, name: str) -> Frame | None:
        return None


class EpisodeBrowserView:
    """Frame-by-frame browser of saved episodes (train, test, imagination, saved).

    Keys: right/left = +-1 frame, page up/page down = +-10, space = play/stop, up/down =
    next/previous episode, t/y/i/s = train/test/imagination/saved set, Enter = first frame.
    """

    episodic = False
    title = "saved episodes"

    def __init__(self, episodes_dir: Path, meanings: list[str], kind: str | None = None):
        self.episodes_dir = Path(episodes_dir)
        self.meanings = meanings
        self.files = {k: episode_files(self.episodes_dir, k) for k in SETS}
        available = [k for k in SETS if self.files[k]]
        if not available:
            raise FileNotFoundError(
                f"no saved episodes under {self.episodes_dir}/{{{','.join(SETS)}}}; the trainer "
                "writes them when run.save_media is on (rem train), or keep some with --save-mode"
            )
        if kind is not None and not self.files.get(kind):
            raise FileNotFoundError(
                f"no episodes in {self.episodes_dir / kind}; sets with episodes: {', '.join(available)}"
            )
        self.kind = kind or available[0]
        self.index = 0
        self.t = 0
        self.playing = False
        self.notice = ""
        self.episode: Episode = load_episode(self.files[self.kind][0])

    def _open(self, kind: str, index: int) -> None:
        files = self.files[kind]
        self.kind, self.index = kind, index % len(files)
        self.episode = load_episode(files[self.index])
        self.t = 0

    def _frame(self) -> Frame:
        ep, t = self.episode, self.t
        action = int(ep.actions[t])
        name = self.meanings[action] if action < len(self.meanings) else "?"
        path = self.files[self.kind][self.index]
        info = f"{self.kind} {self.index + 1}/{len(self.files[self.kind])} {path.stem} t {t}/{len(ep) - 1}"
        if self.notice:
            info, self.notice = f"{info} | {self.notice}", ""
        return Frame(
            [Panel("observation", chw_to_hwc(ep.observations[t]))],
            step=t,
            action=action,
            action_name=name,
            reward=float(ep.rewards[t]),
            episode_return=float(ep.rewards[: t + 1].sum()),
            done=bool(ep.ends[t]),
            info=info,
            observation=ep.observations[t],
        )

    def reset(self) -> Frame:
        self.t = 0
        self.playing = False
        return self._frame()

    def step(self, held_keys: frozenset[str] = frozenset()) -> Frame:
        if self.playing:
            self.t = min(self.t + 1, len(self.episode) - 1)
            self.playing = self.t < len(self.episode) - 1
        return self._frame()

    def key(self, name: str) -> Frame | None:
        moves = {"right": 1, "left": -1, "page up": 10, "page down": -10}
        sets = {"t": "train", "y": "test", "i": "imagination", "s": "saved"}
        if name in moves:
            self.t = int(np.clip(self.t + moves[name], 0, len(self.episode) - 1))
        elif name == "space":
            self.playing = not self.playing
        elif name in ("up", "down"):
            self._open(self.kind, self.index + (1 if name == "up" else -1))
        elif name in sets:
            self.files[sets[name]] = episode_files(self.episodes_dir, sets[name])  # new saves
            if self.files[sets[name]]:
                self._open(sets[name], 0)
            else:
                self.notice = f"no {sets[name]} episodes"
        else:
            return None
        return self._frame()
