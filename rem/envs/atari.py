"""The Atari 100k env protocol (docs/protocol.md#environment) on gymnasium + ale-py.

Wrapper stack, innermost first (`make_env`):

1. `gymnasium.make("<Game>NoFrameskip-v4")`: ALE frameskip 1, no sticky actions, minimal
   action set, ALE-internal cap of 108,000 frames per game.
2. `RawFrameLimit` (gymnasium's TimeLimit) in RAW frames: train 20,000, test 108,000. It
   sits below the frame skip, so it counts raw frames, reset no-ops included, and only a
   real reset restarts it (the cap is per game, not per life). gymnasium's TimeLimit does
   exactly this; the subclass only makes its counter a public attribute for checkpoints.
3. `NoopReset`: on a real reset take N no-op raw frames, N uniform in [1, noop_max]
   (train 30, test 1 = always exactly one); a game that ends during the no-ops is reset again.
4. `ResizeMaxPoolFrameSkip`: repeat the action 4 raw frames, sum rewards, stop early when
   the game ends; resize frames to 64x64 RGB with PIL bilinear and return the pixel-wise max
   of the last two resized frames. The raw 210x160 frame stays readable as `raw_frame`
   (the viewer shows it; `raw_frame(env)` finds it).
5. `LifeLossEnds` (train env only): a lost life (lives decrease and stay > 0) ends the
   episode; the next `reset()` is a single no-op agent step unless the game is really over.

The reference resizes every raw frame right above `gym.make` and pools resized frames. We
resize inside the frame skip, only the frames that reach the agent (the two pooled frames,
the reset frame): resizing is a per-frame function, so the observations are identical, and
the no-op frames and the first two frames of every skip are not resized for nothing (PIL
costs about as much as the emulator).

Rewards are never clipped. Observations are uint8 (64, 64, 3) HWC.

Why not `gymnasium.wrappers.AtariPreprocessing`: it max-pools the two last RAW frames and
then resizes with OpenCV (INTER_AREA), we resize every frame with PIL bilinear first and
pool the 64x64 frames (the reference's order); its life-loss mode ends the
episode on every lost life (also the last) and has no pseudo-reset (its reset is always a
real reset with fresh no-ops); it cannot place a TimeLimit between the raw frames and the
frame skip; and it defaults to grayscale. Each of these changes the data the agent sees, so
the protocol is built from the small wrappers below.

Seeding (unlike the reference): `make_env(..., seed=s)` seeds both the ALE (on the
first reset) and the no-op RNG from `s`, so the same seed and the same actions give the same
frames. `reset(seed=t)` reseeds both.

Decision where the reference is ill-defined: if the game ends inside a frame skip, the
reference returns a max over a buffer that may hold frames of the previous step; we pool the
last two frames actually produced (one frame if the game ended on the first). That frame is
the terminal observation, which is never stored for training. If the pseudo-reset no-op after
a lost life ends the game, we do a real reset instead of returning a finished game.
"""

from __future__ import annotations

import functools
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from PIL import Image

from rem.config import EnvConfig
from rem.envs.catch import ACTION_MEANINGS as CATCH_ACTIONS
from rem.envs.catch import CatchEnv
from rem.games import env_id, is_toy

gym.register_envs(ale_py)
# The ALE banner would be printed once per subprocess env; errors still show.
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


def _ale(env: gym.Env) -> ale_py.ALEInterface:
    return env.unwrapped.ale


class RawFrameLimit(gym.wrappers.TimeLimit):
    """gymnasium's TimeLimit with its step counter public (`elapsed_steps`), so that a
    checkpoint can save and restore it (get_env_state / set_env_state)."""

    @property
    def elapsed_steps(self) -> int:
        return self._elapsed_steps

    @elapsed_steps.setter
    def elapsed_steps(self, value: int) -> None:
        self._elapsed_steps = value


class NoopReset(gym.Wrapper):
    """Real reset + N no-op raw frames, N uniform in [1, noop_max]; seeds ALE and its own RNG."""

    def __init__(self, env: gym.Env, noop_max: int, seed: int) -> None:
        super().__init__(env)
        if noop_max < 1:
            raise ValueError(f"noop_max must be >= 1 (the test env uses exactly 1), got {noop_max}")
        meaning = env.unwrapped.get_action_meanings()[0]
        if meaning != "NOOP":  # the reference asserts the same
            raise ValueError(
                f"action 0 of {env.spec.id if env.spec else env} is {meaning}, not NOOP"
            )
        self.noop_max = noop_max
        self._seed(seed)

    def _seed(self, seed: int) -> None:
        ale_seq, noop_seq = np.random.SeedSequence(seed).spawn(2)
        self.pending_ale_seed: int | None = int(ale_seq.generate_state(1)[0])
        self.rng = np.random.default_rng(noop_seq)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._seed(seed)
        ale_seed, self.pending_ale_seed = self.pending_ale_seed, None
        obs, info = self.env.reset(seed=ale_seed, options=options)
        noops = int(self.rng.integers(1, self.noop_max + 1))
        for _ in range(noops):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        info["noops"] = noops
        return obs, info


class ResizeMaxPoolFrameSkip(gym.Wrapper):
    """Repeat an action `skip` raw frames, sum rewards, obs = max of the last two frames
    resized to (size, size, 3) uint8 with PIL bilinear. Keeps the last raw frame."""

    def __init__(self, env: gym.Env, skip: int, size: int) -> None:
        super().__init__(env)
        if skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {skip}")
        self.skip, self.size = skip, size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.raw_frame: np.ndarray | None = None

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        image = Image.fromarray(frame).resize((self.size, self.size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.raw_frame = obs
        return self._resize(obs), info

    def step(self, action):
        total_reward = 0.0
        previous = obs = None
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self.skip):
            previous = obs
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        self.raw_frame = obs
        pooled = self._resize(obs)
        if previous is not None:
            pooled = np.maximum(self._resize(previous), pooled)
        return pooled, total_reward, terminated, truncated, info


class LifeLossEnds(gym.Wrapper):
    """Train env only: losing a life (lives stay > 0) ends the episode; reset = one no-op step.

    `info["life_loss"]` marks such ends; `info["pseudo_reset"]` marks the no-op-step resets.
    The reward of the pseudo-reset step is dropped (as in the reference).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = bool(terminated or truncated)
        lives = _ale(self.env).lives()
        info["life_loss"] = bool(0 < lives < self.lives)
        if info["life_loss"]:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
            info["pseudo_reset"] = False
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            info["pseudo_reset"] = True
            if terminated or truncated:  # the no-op finished the game: start a real one
                obs, info = self.env.reset(options=options)
                info["pseudo_reset"] = False
        self.game_over = False
        self.lives = _ale(self.env).lives()
        return obs, info


def make_env(game: str, *, train: bool, seed: int, cfg: EnvConfig | None = None) -> gym.Env:
    """The train (`train=True`) or test env (docs/protocol.md#train-and-test-envs) of a game.

    A toy game (`rem.envs.catch`) is the same env for train and test: it emits agent-step
    64x64 frames and has no lives, so none of the Atari wrappers applies.
    """
    if is_toy(game):
        return CatchEnv(seed=seed)
    return wrap_env(gym.make(env_id(game)), train=train, seed=seed, cfg=cfg)


def wrap_env(env: gym.Env, *, train: bool, seed: int, cfg: EnvConfig | None = None) -> gym.Env:
    """Apply the protocol's wrapper stack to a raw-frame ALE-like env (frameskip 1)."""
    cfg = cfg or EnvConfig()
    max_frames = cfg.train_max_raw_frames if train else cfg.test_max_raw_frames
    env = RawFrameLimit(env, max_episode_steps=max_frames)
    env = NoopReset(env, cfg.train_noop_max if train else cfg.test_noop_max, seed)
    env = ResizeMaxPoolFrameSkip(env, cfg.frame_skip, cfg.size)
    if train:
        env = LifeLossEnds(env)
    return env


def raw_frame(env: gym.Env) -> np.ndarray | None:
    """The last raw 210x160x3 frame the ALE produced (None before the first reset)."""
    return env.get_wrapper_attr("raw_frame")


@functools.cache
def action_meanings(game: str) -> tuple[str, ...]:
    """Names of the game's minimal action set, e.g. ('NOOP', 'FIRE', 'RIGHT', 'LEFT')."""
    if is_toy(game):
        return CATCH_ACTIONS
    env = gym.make(env_id(game))
    try:
        return tuple(env.unwrapped.get_action_meanings())
    finally:
        env.close()


def num_actions(game: str) -> int:
    """Size of the game's minimal action set (A in docs/protocol.md)."""
    return len(action_meanings(game))


# ------------------------------------------------------------------ checkpointable env state


def _find(env: gym.Env, cls: type) -> Any:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, cls):
            return env
        env = env.env
    return None


def pack_frame(frame: np.ndarray | None) -> dict[str, Any] | None:
    """uint8 array -> plain bytes + shape, loadable by `torch.load(weights_only=True)`."""
    return None if frame is None else {"shape": tuple(frame.shape), "data": frame.tobytes()}


def unpack_frame(packed: dict[str, Any] | None) -> np.ndarray | None:
    if packed is None:
        return None
    return np.frombuffer(packed["data"], dtype=np.uint8).reshape(packed["shape"]).copy()


def get_env_state(env: gym.Env) -> dict[str, Any]:
    """Everything needed to continue this env exactly: ALE state, raw-frame counter,
    no-op RNG and life bookkeeping. Only plain Python types (bytes, ints, dicts), so a
    checkpoint holding it loads with `torch.load(weights_only=True)`."""
    if isinstance(env.unwrapped, CatchEnv):
        return {"catch": env.unwrapped.get_state()}
    time_limit = _find(env, RawFrameLimit)
    noop = _find(env, NoopReset)
    life = _find(env, LifeLossEnds)
    resize = _find(env, ResizeMaxPoolFrameSkip)
    return {
        "ale": bytes(_ale(env).cloneState().serialize()),
        "elapsed_raw_frames": time_limit.elapsed_steps,
        "noop_rng": noop.rng.bit_generator.state,
        "pending_ale_seed": noop.pending_ale_seed,
        "lives": None if life is None else life.lives,
        "game_over": None if life is None else life.game_over,
        "raw_frame": pack_frame(resize.raw_frame),
    }


def set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Restore `get_env_state` output into an env built by `make_env` with the same arguments.

    The env must have been reset once (gymnasium's order check); the ALE state replaces it.
    """
    if isinstance(env.unwrapped, CatchEnv):
        env.unwrapped.set_state(state["catch"])
        return
    _ale(env).restoreState(ale_py.ALEState(state["ale"]))
    _find(env, RawFrameLimit).elapsed_steps = state["elapsed_raw_frames"]
    noop = _find(env, NoopReset)
    noop.rng.bit_generator.state = state["noop_rng"]
    noop.pending_ale_seed = state["pending_ale_seed"]
    life = _find(env, LifeLossEnds)
    if (life is None) != (state["lives"] is None):
        raise ValueError(
            "env state was saved from a train env and restored into a test env (or back)"
        )
    if life is not None:
        life.lives, life.game_over = state["lives"], state["game_over"]
    _find(env, ResizeMaxPoolFrameSkip).raw_frame = unpack_frame(state["raw_frame"])
