"""Viewer modes by name: what `rem play --mode` and `rem video --mode` build from a run folder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `rem --help` light: models and envs load only when a view is built
    from rem.training.restore import RunInfo

MODES = {
    "agent": "the agent plays the real game (test env)",
    "agent-panels": "the agent plays the real game: raw frame | 64x64 observation | reconstruction",
    "human-wm": "you play inside the world model with the keyboard; the real game runs alongside",
    "agent-wm": "the agent plays inside the world model; the real game runs alongside",
    "real-vs-imagined": "the agent's actions in the real game and in the world model, side by side",
    "episodes": "browse saved episodes (train, test, imagination, saved) frame by frame",
}
INTERACTIVE_ONLY = {"human-wm"}  # needs a person at the keyboard: `rem play` only


@dataclass
class ViewOptions:
    seed: int = 0
    temperature: float | None = None  # None: the run's test temperature (the evaluated policy)
    device: str = "auto"
    episode_set: str | None = None  # episodes mode: train/test/imagination/saved


def build_view(mode: str, info: RunInfo, options: ViewOptions):
    """The view for `mode` on the run `info` (loads the agent unless browsing episodes)."""
    from rem.evaluation.agent_policy import AgentPolicy
    from rem.training.restore import load_agent
    from rem.utils.device import resolve_device
    from rem.viewer.dream import DreamSession
    from rem.viewer.views import AgentGameView, EpisodeBrowserView, WorldModelView

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    if mode == "episodes":
        return EpisodeBrowserView(info.episodes_dir, info.meanings, options.episode_set)

    device = resolve_device(options.device, "--device")
    agent, _ = load_agent(info, device)
    temperature = options.temperature
    if temperature is None:
        temperature = info.cfg.collection.test_temperature
    policy = AgentPolicy(
        agent, temperature, 0.0, device, num_actions=len(info.meanings), seed=options.seed
    )
    env = info.make_env(options.seed)
    dream = DreamSession(agent, info.cfg.world_model, len(info.meanings), device)
    if mode in ("agent", "agent-panels"):
        reconstruct = dream.reconstruct if mode == "agent-panels" else None
        return AgentGameView(env, policy, info.meanings, seed=options.seed, reconstruct=reconstruct)
    driver = {"human-wm": "human", "agent-wm": "agent", "real-vs-imagined": "agent-real"}[mode]
    return WorldModelView(
        env,
        dream,
        info.meanings,
        driver,
        policy=None if driver == "human" else policy,
        seed=options.seed,
    )
