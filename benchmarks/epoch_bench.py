"""One full epoch by phase, and the extrapolated 600-epoch run time.

Two views:
- `measured_epoch` (tiny size, the `quick` preset): the real `Trainer` runs epochs through
  its own code path (collection, sampling, the three components, evaluation); the phase
  times are the trainer's own `time/*` records, medians over repeated epochs in which every
  component trains, and the evaluation block is timed on its own.
- `composed_epoch` (paper / reduced size): each phase timed on its own at that size, per
  unit: one collection step (train policy + train env + replay), one sampled batch moved to
  the device (`SegmentSampler.sample` + `batch_to_device`) plus one training step per
  component, and one evaluation agent step with K parallel test envs. A steady-state epoch
  (51..500, all components, evaluation every 10th) and the whole run follow from the paper's
  schedule:
      tokenizer 595 x 200 steps, WM 575 x 200, AC 550 x 100, collection 500 x 200 agent
      steps, 60 evaluations of 16 episodes (+ the final 100-episode evaluation).
  The evaluation time assumes test episodes as long as a uniform-random policy's on the
  chosen game (measured here); a trained agent's episodes can be much longer.
"""

from __future__ import annotations

import statistics
import tempfile
from typing import Any

import numpy as np

from benchmarks.harness import BenchResult, measure

SCHEDULE = {
    "tokenizer_steps": 595 * 200,
    "world_model_steps": 575 * 200,
    "actor_critic_steps": 550 * 100,
    "collection_steps": 500 * 200,
    "evaluations": 60,
    "eval_episodes": 16,
    "final_episodes": 100,
}


def _hours(s: float) -> str:
    return f"{s / 3600:.2f} h" if s < 2 * 86400 else f"{s / 86400:.1f} days"


# ----------------------------------------------------------------------------- measured (tiny)


def measured_epoch(args: Any) -> list[BenchResult]:
    from rem.config import load_config
    from rem.training.trainer import Trainer

    repeats = max(3, min(args.repeats, 5))
    with tempfile.TemporaryDirectory(prefix="rem-bench-epoch-") as tmp:
        cfg = load_config(
            "quick",
            None,
            [
                f"run.device={args.device}",
                "run.save_media=false",
                "evaluation.every=1000",  # evaluations are timed separately below
                f"run.epochs={1000}",
            ],
        )
        trainer = Trainer(
            cfg,
            game=args.game,
            seed=0,
            variant="rem",
            run_dir=tmp,
            preset="quick",
            log=lambda _: None,
        )
        trainer.setup()
        first_full = (
            max(
                cfg.training.tokenizer.start_after_epochs,
                cfg.training.world_model.start_after_epochs,
                cfg.training.actor_critic.start_after_epochs,
            )
            + 1
        )
        for epoch in range(1, first_full):  # warm-up: fill the replay, start the components
            trainer.run_epoch(epoch)
        records = [trainer.run_epoch(epoch) for epoch in range(first_full, first_full + repeats)]
        eval_times, mem = measure(
            lambda: trainer.evaluate(first_full + repeats),
            device=args.device,
            warmup=0,
            repeats=repeats,
            budget_s=args.budget,
        )
        trainer.close()
    phases = ["collection", "tokenizer", "world_model", "actor_critic"]
    out = []
    for phase in phases + ["epoch"]:
        times = [r[f"time/{phase}"] for r in records]
        r = BenchResult(
            "epoch",
            f"measured_{phase}",
            "tiny",
            str(args.device),
            f"Trainer.run_epoch phase '{phase}' (quick preset)",
            times,
            memory=mem,
            config={
                "preset": "quick",
                "game": args.game,
                "collection_steps": cfg.collection.steps_per_epoch,
                "tok_steps": cfg.training.tokenizer.steps_per_epoch,
                "wm_steps": cfg.training.world_model.steps_per_epoch,
                "ac_steps": cfg.training.actor_critic.steps_per_epoch,
            },
        )
        out.append(r)
    ev = BenchResult(
        "epoch",
        "measured_evaluation",
        "tiny",
        str(args.device),
        f"Trainer.evaluate ({cfg.evaluation.episodes} episodes, {cfg.evaluation.num_envs} envs, component evals)",
        eval_times,
        memory=mem,
        config={"preset": "quick", "game": args.game},
    )
    out.append(ev)
    return out


# ----------------------------------------------------------------------------- composed (paper)


def _collection_unit(setup, args) -> tuple[list[float], dict, Any]:
    """Seconds per collection agent step; returns the collector too (its replay feeds sampling)."""
    from rem.data.collector import Collector
    from rem.data.replay import Replay
    from rem.envs.atari import make_env
    from rem.evaluation.agent_policy import AgentPolicy

    cfg = setup.cfg
    setup.agent.eval()
    env = make_env(args.game, train=True, seed=0, cfg=cfg.env)
    collector = Collector(env, Replay(), burn_in=cfg.actor_critic.burn_in)
    policy = AgentPolicy(
        setup.agent,
        cfg.collection.train_temperature,
        cfg.collection.train_epsilon,
        args.device,
        num_actions=setup.num_actions,
        seed=0,
    )
    n = 20 if args.quick else 50
    collector.collect(policy, 4 * n)  # warm-up and enough replay for the samplers
    times, mem = measure(
        lambda: collector.collect(policy, n),
        device=args.device,
        warmup=0,
        repeats=args.repeats,
        budget_s=args.budget,
    )
    mem["cpu_times_s"] = [c / n for c in mem["cpu_times_s"]]
    return [t / n for t in times], mem, collector


def _sampling_unit(setup, replay, args) -> dict[str, float]:
    """Median seconds per batch of sample() + batch_to_device, per component."""
    from rem.data.sampler import SegmentSampler, batch_to_device

    cfg = setup.cfg
    ctx = cfg.world_model.context_length
    shapes = {
        "tokenizer": (setup.batch["tokenizer"], 1, 0, "right"),
        "world_model": (setup.batch["world_model"], cfg.world_model.max_blocks, ctx, "right"),
        "actor_critic": (setup.batch["actor_critic"], cfg.actor_critic.burn_in + 1, ctx, "left"),
    }
    out = {}
    for name, (b, s, c, pad) in shapes.items():
        sampler = SegmentSampler(
            replay,
            batch_size=b,
            segment_length=s,
            context=c,
            padding=pad,
            rng=np.random.default_rng(0),
        )
        if sampler.rebuild() == 0:
            out[name] = float("nan")
            continue
        times, _ = measure(
            lambda sampler=sampler: batch_to_device(sampler.sample(), args.device),
            device=args.device,
            warmup=1,
            repeats=max(args.repeats, 5),
        )
        out[name] = statistics.median(times)
    return out


def _eval_unit(setup, args) -> tuple[float, float, int]:
    """(seconds per vector step of K test envs with the test policy, mean random-policy
    test-episode length, K)."""
    from rem.envs.atari import num_actions
    from rem.envs.vector import make_vector_env
    from rem.evaluation.agent_policy import AgentPolicy
    from rem.evaluation.evaluate import evaluate
    from rem.policy import RandomPolicy

    cfg = setup.cfg
    k = cfg.evaluation.num_envs
    random_eval = evaluate(args.game, RandomPolicy(num_actions(args.game), 0), k, 0, k, cfg.env)
    mean_len = float(np.mean(random_eval.lengths))
    policy = AgentPolicy(
        setup.agent,
        cfg.collection.test_temperature,
        0.0,
        args.device,
        num_actions=setup.num_actions,
        seed=0,
    )
    env = make_vector_env(args.game, k, seed=0, cfg=cfg.env)
    try:
        obs, _ = env.reset()
        policy.reset(k)
        n = 10 if args.quick else 40

        def steps() -> None:
            nonlocal obs
            for _ in range(n):
                actions = policy.act(obs.transpose(0, 3, 1, 2))
                obs, _, term, trunc, _ = env.step(actions)
                done = term | trunc
                if done.any():
                    policy.reset_rows(done)

        times, _ = measure(
            steps, device=args.device, warmup=1, repeats=args.repeats, budget_s=args.budget
        )
    finally:
        env.close()
    return statistics.median(times) / n, mean_len, k


def _compose(
    cfg, per_step: dict[str, float], eval_once: float, mean_len: float, k: int, eval_step: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-unit seconds -> (steady-state epoch by phase, 600-epoch run by phase)."""
    ts = cfg.training
    epoch = {
        "collection": cfg.collection.steps_per_epoch * per_step["collection"],
        "tokenizer": ts.tokenizer.steps_per_epoch * per_step["tokenizer"],
        "world_model": ts.world_model.steps_per_epoch * per_step["world_model"],
        "actor_critic": ts.actor_critic.steps_per_epoch * per_step["actor_critic"],
        "evaluation_amortised": eval_once / cfg.evaluation.every,
    }
    run = {
        "collection": SCHEDULE["collection_steps"] * per_step["collection"],
        "tokenizer": SCHEDULE["tokenizer_steps"] * per_step["tokenizer"],
        "world_model": SCHEDULE["world_model_steps"] * per_step["world_model"],
        "actor_critic": SCHEDULE["actor_critic_steps"] * per_step["actor_critic"],
        "evaluations": SCHEDULE["evaluations"] * eval_once,
        "final_evaluation": SCHEDULE["final_episodes"] * mean_len / k * eval_step,
    }
    return epoch, run


def composed_epoch(args: Any, size: str) -> list[BenchResult]:
    from benchmarks import model_bench as mb

    setup = mb.build(args, size, perceptual=True)
    cfg = setup.cfg
    per_step: dict[str, float] = {}
    per_step_cpu: dict[str, float] = {}  # process CPU seconds: the idle-machine estimate
    results = []
    coll_times, coll_mem, collector = _collection_unit(setup, args)
    per_step["collection"] = statistics.median(coll_times)
    per_step_cpu["collection"] = statistics.median(coll_mem.pop("cpu_times_s"))
    sampling = _sampling_unit(setup, collector.replay, args)
    collector.env.close()
    for name, builder in (
        ("tokenizer", mb.tokenizer_step),
        ("world_model", mb.world_model_step),
        ("actor_critic", mb.actor_critic_step),
    ):
        times, mem = measure(
            builder(setup, args),
            device=args.device,
            warmup=1,
            repeats=args.repeats,
            budget_s=args.budget,
        )
        per_step[name] = statistics.median(times) + sampling[name]
        per_step_cpu[name] = statistics.median(mem["cpu_times_s"]) + sampling[name]
        r = BenchResult(
            "epoch",
            f"unit_{name}",
            size,
            str(args.device),
            f"{name}: sample + batch_to_device + training step",
            [t + sampling[name] for t in times],
            memory=mem,
            config=mb.setup_config(setup, batch=setup.batch[name]),
        )
        r.derived["sampling_s"] = round(sampling[name], 5)
        results.append(r)
    eval_step, mean_len, k = _eval_unit(setup, args)
    eval_once = SCHEDULE["eval_episodes"] * mean_len / k * eval_step
    epoch, run = _compose(cfg, per_step, eval_once, mean_len, k, eval_step)
    epoch_cpu, run_cpu = _compose(cfg, per_step_cpu, eval_once, mean_len, k, eval_step)
    total_epoch = sum(epoch.values())
    total_run = sum(run.values())
    r = BenchResult(
        "epoch",
        "composed_epoch",
        size,
        str(args.device),
        "steady-state epoch (51..500) composed from per-unit medians",
        [total_epoch],
        memory=coll_mem,
        config=mb.setup_config(setup, batches=setup.batch),
    )
    r.derived["epoch_by_phase_s"] = {k: round(v, 2) for k, v in epoch.items()}
    r.derived["per_unit_s"] = {k: round(v, 5) for k, v in per_step.items()}
    r.derived["evaluation_s"] = round(eval_once, 2)
    r.derived["evaluation_assumption"] = (
        f"{SCHEDULE['eval_episodes']} episodes of {mean_len:.0f} agent steps "
        f"(uniform-random policy on {args.game}) over {k} envs at {eval_step * 1e3:.1f} ms per vector step"
    )
    r.derived["run_by_phase_h"] = {k: round(v / 3600, 2) for k, v in run.items()}
    r.derived["run_600_epochs"] = _hours(total_run)
    r.derived["run_600_epochs_s"] = round(total_run, 1)
    r.derived["cpu_time_based"] = {
        "note": "same composition from process CPU time per unit (evaluation stays wall time: "
        "its envs run in subprocesses); the better estimate on a shared machine",
        "epoch_by_phase_s": {k: round(v, 2) for k, v in epoch_cpu.items()},
        "epoch_s": round(sum(epoch_cpu.values()), 1),
        "run_600_epochs": _hours(sum(run_cpu.values())),
    }
    r.derived["schedule"] = SCHEDULE
    r.derived["wm_train_plus_imagination_per_epoch_note"] = (
        "see world_model/train_step_pop and imagination/rollout_pop per_epoch_s "
        "(target on an H100: sum <= 29.5 s)"
    )
    if size != "paper":
        r.notes.append(
            f"size {size}: batches {setup.batch} are not the paper's, so this run time is NOT the "
            "paper run's; use --sizes paper for that"
        )
    results.append(r)
    mb.free_setup(setup)
    return results


def run(args: Any) -> list[BenchResult]:
    out: list[BenchResult] = []
    if "tiny" in args.sizes:
        out += measured_epoch(args)
    for size in args.sizes:
        out += composed_epoch(args, size)
    return out
