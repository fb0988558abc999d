"""Env throughput: the train wrapper stack vs raw ALE stepping, and parallel test evaluation.

- train stack: `rem.envs.atari.make_env(game, train=True, ...)` (resize to 64x64, frame skip
  4 + max-pool, no-op resets, life loss = done, TimeLimit), driven by seeded random agent
  actions for a fixed number of agent steps.
- raw ALE: `gymnasium.make("<Game>NoFrameskip-v4")` (frameskip 1, no sticky actions, RGB
  210x160 observations) replaying *exactly the raw calls the train stack made* (its resets
  with their ALE seeds, every raw frame's action, the no-ops included), recorded in an
  untimed pass. Both therefore emulate the same frames (checked: equal ALE frame counters);
  the emulator's cost depends on the game state, so stepping the raw env with its own episodes
  would compare different work.
- The wrapper overhead is (train stack time / raw time - 1); the target is at most
  10%. It splits in two, each measured: the protocol's image transform (PIL bilinear
  210x160 -> 64x64 of the two pooled frames, docs/protocol.md#environment: a data definition, it
  cannot be dropped without changing what the agent sees) and the wrapper logic (frame skip,
  max-pool, no-ops, life loss, time limit), timed by a third run of the same stack with the
  resize replaced by a constant frame. The three run interleaved, fresh envs every round, and
  the overheads are medians of per-round ratios (a shared machine drifts by tens of percent
  over a minute). When over target, a cProfile of the train stack lists what costs.
- evaluation: `rem.evaluation.evaluate` with a uniform-random policy and K parallel test
  envs (the paper uses 8), reported in agent steps/s over all envs.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from benchmarks.harness import BenchResult, measure


def _env_id(game: str) -> str:
    return f"{game}NoFrameskip-v4"


def _raw_env(game: str):
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(_env_id(game))


class _RawCalls(gym.Wrapper):
    """Records every call into the raw env: ("reset", seed) or an action."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.calls: list[Any] = []

    def reset(self, *, seed=None, options=None):
        self.calls.append(("reset", seed))
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.calls.append(int(action))
        return self.env.step(action)


def _agent_loop(env: gym.Env, actions: np.ndarray, seed: int, start: int = 0) -> None:
    """What a collector does: one env.step per agent action, reset when an episode ends.
    `actions` are agent steps start, start + 1, ...; step 0 begins with the seeded reset."""
    if start == 0:
        env.reset(seed=seed)
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()


def _replay(env: gym.Env, calls: list[Any]) -> None:
    for call in calls:
        if isinstance(call, tuple):
            env.reset(seed=call[1])
        else:
            env.step(call)


def _frames(env: gym.Env) -> int:
    return int(env.unwrapped.ale.getFrameNumber())


def _profile_top(fn, lines: int = 12) -> list[str]:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(lines)
    text = [ln.rstrip() for ln in buf.getvalue().splitlines() if ln.strip()]
    # keep the table rows (ncalls tottime ...), drop the preamble
    start = next((i for i, ln in enumerate(text) if ln.lstrip().startswith("ncalls")), 0)
    return text[start : start + lines + 1]


def bench_env(args: Any, seed: int = 0) -> list[BenchResult]:
    """Raw ALE vs the train stack on identical raw frames (see the module docstring)."""
    quick, repeats, budget_s, game = args.quick, args.repeats, args.budget, args.game
    from rem.config import EnvConfig
    from rem.envs.atari import make_env, num_actions, wrap_env

    cpu = torch.device("cpu")
    steps = 100 if quick else 1000  # agent steps per repeat
    cfg = EnvConfig()
    actions = np.random.default_rng(seed).integers(0, num_actions(game), size=steps)

    # Chunks of agent steps, run in turn by the three: drift slower than a chunk (~30 ms)
    # hits all three alike. `bounds[c]` = raw calls made before chunk c.
    chunk = 25
    starts = list(range(0, steps, chunk))
    recorder = _RawCalls(_raw_env(game))
    recorded = wrap_env(recorder, train=True, seed=seed, cfg=cfg)
    bounds = []
    for lo in starts:
        bounds.append(len(recorder.calls))
        _agent_loop(recorded, actions[lo : lo + chunk], seed, lo)
    bounds.append(len(recorder.calls))
    calls = recorder.calls
    recorder.close()

    def build() -> dict[str, gym.Env]:
        logic = make_env(game, train=True, seed=seed, cfg=cfg)
        _skip_resize(logic)
        return {
            "raw_ale": _raw_env(game),
            "train_stack": make_env(game, train=True, seed=seed, cfg=cfg),
            "train_stack_without_resize": logic,
        }

    def stack_chunk(env: gym.Env, c: int) -> None:
        _agent_loop(env, actions[starts[c] : starts[c] + chunk], seed, starts[c])

    runs = {
        "raw_ale": lambda env, c: _replay(env, calls[bounds[c] : bounds[c + 1]]),
        "train_stack": stack_chunk,
        "train_stack_without_resize": stack_chunk,
    }
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu_s: dict[str, list[float]] = {k: [] for k in runs}
    frames: set[int] = set()

    def one_round() -> None:
        envs = build()  # untimed: env construction loads the ROM
        for name in runs:
            wall[name].append(0.0)
            cpu_s[name].append(0.0)
        for c in range(len(starts)):
            for name, run in runs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                run(envs[name], c)
                wall[name][-1] += time.perf_counter() - t0
                cpu_s[name][-1] += time.process_time() - c0
        for env in envs.values():
            frames.add(_frames(env))
            env.close()

    one_round()  # warm-up
    for lists in (wall, cpu_s):
        for v in lists.values():
            v.clear()
    rounds = max(repeats, 3 if quick else 7)
    _, mem = measure(one_round, device=cpu, warmup=0, repeats=rounds, budget_s=3 * budget_s)
    mem.pop("cpu_times_s", None)
    if len(frames) != 1:
        raise RuntimeError(f"the raw replay and the stack emulated different frames: {frames}")
    raw_frames = frames.pop()
    t_resize = _time_resize(game, cfg, seed, frames=50 if quick else 400)
    config = {
        "game": game,
        "agent_steps_per_repeat": steps,
        "raw_frames_per_repeat": raw_frames,
        "frame_skip": cfg.frame_skip,
    }
    units = {
        "raw_ale": f"the stack's {raw_frames} raw frames replayed on the gymnasium ALE env",
        "train_stack": f"{steps} agent steps through rem.envs.atari.make_env(train=True)",
        "train_stack_without_resize": f"{steps} agent steps, same stack, resize replaced by "
        "a constant 64x64 frame",
    }
    results = {
        name: BenchResult(
            "env",
            name,
            "paper",
            "cpu",
            units[name],
            wall[name],
            steps,
            "agent steps",
            dict(mem),
            config,
            cpu_times_s=cpu_s[name],
        )
        for name in runs
    }
    t_raw, t_stack, t_logic = (np.array(wall[k]) for k in runs)
    overhead = float(np.median(t_stack / t_raw)) - 1.0
    logic_overhead = float(np.median(t_logic / t_raw)) - 1.0
    resize_share = float(np.median((t_stack - t_logic) / t_raw))
    r_stack = results["train_stack"]
    r_stack.derived["wrapper_overhead_vs_raw"] = f"{overhead:+.1%} (target <= +10%)"
    r_stack.derived["wrapper_overhead_pass"] = overhead <= 0.10
    r_stack.derived["split_vs_raw"] = {
        "wrapper_logic": f"{logic_overhead:+.1%}",
        "protocol_resize": f"{resize_share:+.1%}",
    }
    r_stack.derived["wrapper_logic_overhead_pass"] = logic_overhead <= 0.10
    r_stack.derived["per_agent_step_us"] = {
        k: round(results[k].median_s / steps * 1e6, 1) for k in runs
    } | {"pil_resize_one_frame": round(float(np.median(t_resize)) * 1e6, 1)}
    if overhead > 0.10:
        env = make_env(game, train=True, seed=seed, cfg=cfg)
        short = actions[: min(steps, 300)]
        r_stack.derived["profile_train_stack_top_tottime"] = _profile_top(
            lambda: _agent_loop(env, short, seed)
        )
        env.close()
    return list(results.values())


def _skip_resize(env: gym.Env) -> None:
    """Replace the protocol's resize of this env by a constant frame (a timing control)."""
    from rem.envs.atari import ResizeMaxPoolFrameSkip

    while not isinstance(env, ResizeMaxPoolFrameSkip):
        env = env.env
    blank = np.zeros((env.size, env.size, 3), dtype=np.uint8)
    env._resize = lambda frame: blank


def _time_resize(game: str, cfg: Any, seed: int, frames: int) -> list[float]:
    """Seconds per call of the stack's own resize on real raw frames of `game`."""
    from rem.envs.atari import ResizeMaxPoolFrameSkip

    env = _raw_env(game)
    rng = np.random.default_rng(seed)
    raw = [env.reset(seed=seed)[0]]
    while len(raw) < frames:
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        raw.append(env.reset()[0] if terminated or truncated else obs)
    resize = ResizeMaxPoolFrameSkip(env, cfg.frame_skip, cfg.size)._resize
    out = []
    for frame in raw:
        t0 = time.perf_counter()
        resize(frame)
        out.append(time.perf_counter() - t0)
    env.close()
    return out


def bench_evaluation(args: Any, seed: int = 0) -> list[BenchResult]:
    """Parallel test envs: steady-state vector stepping for K envs, and the paper's
    evaluation (16 episodes on 8 envs) end to end, with a uniform-random policy."""
    quick, repeats, budget_s, game = args.quick, args.repeats, args.budget, args.game
    from rem.config import EnvConfig
    from rem.envs.atari import num_actions
    from rem.envs.vector import make_vector_env
    from rem.evaluation.evaluate import evaluate
    from rem.policy import RandomPolicy

    cpu = torch.device("cpu")
    cfg = EnvConfig()
    n_act = num_actions(game)
    out = []
    steps = 50 if quick else 200  # vector steps per repeat
    for k in [2] if quick else [1, 2, 4, 8]:
        env = make_vector_env(game, k, seed=seed, cfg=cfg)  # subprocesses, as `evaluate` uses
        actions = np.random.default_rng(seed).integers(0, n_act, size=(steps, k))
        try:
            env.reset()

            def run(env=env, actions=actions) -> None:
                for a in actions:  # the vector env resets finished episodes itself
                    env.step(a)

            times, mem = measure(run, device=cpu, warmup=1, repeats=repeats, budget_s=budget_s)
        finally:
            env.close()
        out.append(
            BenchResult(
                "env",
                f"vector_k{k}",
                "paper",
                "cpu",
                f"{steps} steps of {k} parallel test envs (subprocesses), random actions",
                times,
                steps * k,
                "agent steps",
                mem,
                {"game": game, "num_envs": k, "vector_steps": steps},
            )
        )
    base = out[0].stats()["rate_per_s"]
    for r in out[1:]:
        r.derived["speedup_vs_first"] = round(r.stats()["rate_per_s"] / base, 2)

    episodes, k = (2, 2) if quick else (16, 8)
    lengths: list[int] = []

    def run_eval() -> None:
        result = evaluate(game, RandomPolicy(n_act, seed), episodes, seed, num_envs=k, cfg=cfg)
        lengths.append(int(np.sum(result.lengths)))

    times, mem = measure(
        run_eval, device=cpu, warmup=0, repeats=1 if quick else min(repeats, 3), budget_s=budget_s
    )
    res = BenchResult(
        "env",
        f"evaluate_{episodes}ep_k{k}",
        "paper",
        "cpu",
        f"rem.evaluation.evaluate: {episodes} test episodes on {k} envs, random policy, "
        "incl. env start-up",
        times,
        float(np.median(lengths)),
        "agent steps",
        mem,
        {"game": game, "num_envs": k, "episodes": episodes, "seed": seed},
    )
    res.derived["agent_steps_per_repeat"] = lengths  # same seed, same episodes each repeat
    out.append(res)
    return out
