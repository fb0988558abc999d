"""`python -m benchmarks gpu-check --json FILE`: one command, at most ~8 minutes on one GPU,
that tells whether a GPU is fit for the sweep and writes what `rem plan` reads.

Parts, each under its share of `--budget-s` (default 480 s):
  1. phases: the epoch benchmark (`composed_epoch`) at the paper's sizes: collection, each
     component's sample + training step, evaluation, the 600-epoch run by phase;
  2. fast paths: each component's training step eager and through `torch.compile` (modes
     `default` and, on CUDA, `reduce-overhead`, which captures CUDA graphs); a path counts
     only if its loss equals the eager one (same batch, same seed, dropout off) within
     COMPILE_RTOL, and the fastest such path is named. Tried on CUDA; on a CPU only with
     `--fast-paths compile` (inductor's C++ build is slow there);
  3. peak memory of every part (torch.cuda.max_memory_allocated, process RSS);
  4. packing: 1, 2 and 4 processes training the world model at once on the device, each
     timing its own steps: slowdown = a step's median time with K processes over alone;
     throughput = K / slowdown;
  5. pilot epochs: the real Trainer running a few epochs of the pilot's config (paper
     preset; component starts moved to epochs 1-3 so every phase runs), phase times from
     its own `time/*` records.
The JSON is a `rem-bench/1` payload (so `rem plan --bench FILE` reads its composed epoch)
with a `gpu_check` section (fast paths, packing slowdowns, pilot epochs, budget). `--sizes
tiny` runs every part at the quick preset's sizes (the CPU test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness import BenchError, BenchResult, measure

COMPILE_RTOL = 1e-3  # compiled kernels reorder float sums; losses agree to ~1e-5 in practice
SHARES = {"phases": 0.35, "fast_paths": 0.25, "packing": 0.2, "pilot": 0.2}


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:N]")
    p.add_argument("--sizes", default=None, choices=("paper", "tiny"),
                   help="paper (default on CUDA) or tiny (the quick preset; default on CPU)")  # fmt: skip
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds in all (default 480)")
    p.add_argument("--fast-paths", default="auto", choices=("auto", "compile", "none"),
                   help="auto: torch.compile on CUDA only; compile: also on a CPU")  # fmt: skip
    p.add_argument("--pilot-epochs", type=int, default=3, help="timed pilot epochs (default 3)")
    p.add_argument("--packing", default="1,2,4", help="runs per GPU to time (default 1,2,4)")
    p.add_argument("--game", default="Boxing", help="game of the env-driven parts")
    return p


# ----------------------------------------------------------------------------- fast paths


def _loss_fns(setup) -> dict[str, tuple[Any, Any, Any]]:
    """component -> (module whose compute_loss is compiled, batch, extra args)."""
    from benchmarks import model_bench as mb

    a, c = setup.agent, setup.cfg
    b = setup.batch
    return {
        "tokenizer": (
            a.tokenizer,
            mb.synthetic_batch(b["tokenizer"], 1, setup.num_actions, setup.device),
            (),
        ),  # fmt: skip
        "world_model": (
            a.world_model,
            mb.synthetic_batch(
                b["world_model"], c.world_model.max_blocks, setup.num_actions, setup.device
            ),
            (a.tokenizer,),
        ),  # fmt: skip
    }


def _loss_value(fn, batch, extra) -> float:
    torch.manual_seed(0)
    with torch.no_grad():
        loss, _ = fn(batch, *extra, metrics_as_tensors=True)
    return float(loss)


def _time_step(args, setup, module, fn, batch, extra, budget: float) -> list[float]:
    from benchmarks import model_bench as mb

    name = "tokenizer" if module is setup.agent.tokenizer else "world_model"
    opt = getattr(setup.optimizers, name)
    clip = getattr(setup.cfg.training, name).max_grad_norm
    step = mb.train_step(args, opt, lambda: fn(batch, *extra, metrics_as_tensors=True), clip)
    module.train()
    times, _ = measure(step, device=args.device, warmup=2, repeats=5, budget_s=budget)
    return times


def fast_paths(args, setup, budget: float) -> dict[str, Any]:
    """Eager against torch.compile per component: equal losses, then the faster path."""
    if args.fast_paths == "none" or (args.fast_paths == "auto" and args.device.type != "cuda"):
        return {"tried": False, "why": f"--fast-paths {args.fast_paths} on {args.device.type}"}
    modes = ["default", "reduce-overhead"] if args.device.type == "cuda" else ["default"]
    out: dict[str, Any] = {"tried": True, "rtol": COMPILE_RTOL, "components": {}}
    share = budget / (len(_loss_fns(setup)) * (1 + len(modes)))
    for name, (module, batch, extra) in _loss_fns(setup).items():
        module.eval()
        ref = _loss_value(module.compute_loss, batch, extra)
        eager = statistics.median(_time_step(args, setup, module, module.compute_loss,
                                             batch, extra, share))  # fmt: skip
        rows = {"eager": {"median_s": eager, "loss": ref, "equal": True}}
        for mode in modes:
            try:
                fn = torch.compile(module.compute_loss, mode=mode)
                module.eval()
                value = _loss_value(fn, batch, extra)
                equal = abs(value - ref) <= COMPILE_RTOL * max(1.0, abs(ref))
                t = statistics.median(_time_step(args, setup, module, fn, batch, extra, share))
                rows[f"compile:{mode}"] = {"median_s": t, "loss": value, "equal": equal}
            except Exception as err:  # noqa: BLE001 - a backend that fails is a finding
                rows[f"compile:{mode}"] = {"error": f"{type(err).__name__}: {err}"[:300]}
        ok = {k: v for k, v in rows.items() if v.get("equal")}
        best = min(ok, key=lambda k: ok[k]["median_s"])
        out["components"][name] = {"paths": rows, "fastest_equal": best,
                                   "speedup": eager / ok[best]["median_s"]}  # fmt: skip
    return out


# ----------------------------------------------------------------------------- packing


def worker(size: str, device: str, steps: int, game: str) -> None:
    """One packing process: world-model training steps, prints its median step time."""
    from benchmarks import model_bench as mb

    args = argparse.Namespace(device=torch.device(device), game=game, bf16=False)
    setup = mb.build(args, size, perceptual=False)
    step = mb.world_model_step(setup, args)
    times, mem = measure(step, device=args.device, warmup=2, repeats=steps, min_repeats=steps)
    print(json.dumps({"median_s": statistics.median(times), "memory": mem}))


def packing(args, budget: float) -> dict[str, Any]:
    """K processes on the device at once: each one's median step time against alone."""
    steps = 20 if args.size == "paper" else 5
    out: dict[str, Any] = {"steps_per_process": steps, "runs": {}}
    for k in args.packing:  # every K asked for is timed: the steps per process bound it
        cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--worker", args.size,
               str(args.device), str(steps), args.game]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(k)]  # fmt: skip
        rows = [json.loads(p.communicate(timeout=max(900.0, 3 * budget))[0].splitlines()[-1])
                for p in procs]  # fmt: skip
        out["runs"][str(k)] = {"median_step_s": statistics.median(r["median_s"] for r in rows),
                               "memory": [r["memory"] for r in rows]}  # fmt: skip
    alone = out["runs"]["1"]["median_step_s"]
    out["slowdown"] = {k: r["median_step_s"] / alone for k, r in out["runs"].items()
                       if "median_step_s" in r}  # fmt: skip
    out["throughput"] = {k: int(k) / s for k, s in out["slowdown"].items()}
    return out


# ----------------------------------------------------------------------------- pilot epochs


def pilot_epochs(args, epochs: int, results: list) -> dict[str, Any]:
    """The Trainer's own epochs of the pilot config, components started early (at tiny size
    also a `measured_epoch` result appended to `results`)."""
    from rem.config import load_config
    from rem.training.trainer import Trainer

    preset = "paper" if args.size == "paper" else "quick"
    overrides = [f"run.device={args.device}", "run.save_media=false", "evaluation.every=1000",
                 "run.epochs=1000", "training.tokenizer.start_after_epochs=0",
                 "training.world_model.start_after_epochs=1",
                 "training.actor_critic.start_after_epochs=2"]  # fmt: skip
    if args.size == "paper":
        overrides.append("tokenizer.perceptual_loss=false")  # no weight files needed
    cfg = load_config(preset, None, overrides)
    with tempfile.TemporaryDirectory(prefix="rem-gpu-check-") as tmp:
        trainer = Trainer(cfg, game=args.game, seed=0, variant="rem", run_dir=tmp,
                          preset=preset, log=lambda _: None)  # fmt: skip
        trainer.setup()
        records = [trainer.run_epoch(e) for e in range(1, 3 + epochs)]
        trainer.close()
    timed = records[2:]  # epochs 3..: every phase runs
    phases = ("collection", "tokenizer", "world_model", "actor_critic", "epoch")
    if preset == "quick":  # `rem plan --bench` prices the quick preset from these epochs
        results.append(BenchResult("epoch", "measured_epoch", "tiny", str(args.device),
                                   "Trainer.run_epoch (quick preset, gpu-check)",
                                   [r["time/epoch"] for r in timed]))  # fmt: skip
    return {
        "preset": preset,
        "epochs_timed": len(timed),
        "epoch_phase_s": {p: statistics.median(r[f"time/{p}"] for r in timed) for p in phases},
        "note": "components start at epochs 1-3 here so every phase is timed in a few epochs; "
        + ("the perceptual loss is off (no weight files needed)" if preset == "paper" else ""),
    }


# ----------------------------------------------------------------------------- the command


def _packing_list(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        ks = []
    if not ks or ks[0] != 1 or ks[0] < 1:
        raise BenchError(f"--packing {text}: runs per GPU as a list starting at 1, e.g. 1,2,4")
    return ks


def _bench_args(args, budget: float) -> argparse.Namespace:
    return argparse.Namespace(device=args.device, game=args.game, bf16=False, repeats=3,
                              budget=budget, no_counts=True, quick=args.size == "tiny",
                              sizes=[args.size], threads=None)  # fmt: skip


def run_parts(args) -> tuple[list, dict[str, Any]]:
    """Every part in order, each timed; -> (epoch BenchResults, the gpu_check section)."""
    from benchmarks import model_bench as mb
    from benchmarks.epoch_bench import composed_epoch

    budget, section, walls = args.budget_s, {}, {}
    results: list = []

    def part(name: str, fn) -> Any:
        print(f"[gpu-check] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = fn()
        walls[name] = time.perf_counter() - t0
        print(f"[gpu-check] {name}: {walls[name]:.0f} s", file=sys.stderr, flush=True)
        return out

    phases_args = _bench_args(args, budget * SHARES["phases"] / 6)
    results += part("phases", lambda: composed_epoch(phases_args, args.size))

    def fast() -> dict[str, Any]:
        setup = mb.build(_bench_args(args, 0), args.size, perceptual=False)
        try:
            return fast_paths(args, setup, budget * SHARES["fast_paths"])
        finally:
            mb.free_setup(setup)

    section["fast_paths"] = part("fast_paths", fast)
    section["packing"] = part("packing", lambda: packing(args, budget * SHARES["packing"]))
    section["pilot_epochs"] = part("pilot", lambda: pilot_epochs(args, args.pilot_epochs, results))
    section["peak_memory"] = {r.name: r.memory for r in results}
    section["slowdown"] = section["packing"]["slowdown"]
    section["wall_s"] = {k: round(v, 1) for k, v in walls.items()}
    section["budget_s"] = budget
    return results, section


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks gpu-check") -> int:
    import datetime as dt

    from benchmarks.harness import machine_info, resolve_device, write_json

    args = build_parser(prog).parse_args(argv)
    try:
        args.device = resolve_device(args.device)
        args.size = args.sizes or ("paper" if args.device.type == "cuda" else "tiny")
        args.packing = _packing_list(args.packing)
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        results, section = run_parts(args)
    except BenchError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    payload = {
        "schema": "rem-bench/1",
        "complete": True,
        "started_utc": started,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": ["gpu-check", *(argv if argv is not None else sys.argv[1:])],
        "options": {
            "suites": ["gpu-check"],
            "sizes": [args.size],
            "device": str(args.device),
            "game": args.game,
        },  # fmt: skip
        "machine": machine_info(args.device),
        "results": [r.to_json() for r in results],
        "gpu_check": section,
    }
    write_json(args.json, payload)
    _summary(payload)
    print(f"[gpu-check] JSON written to {args.json}", file=sys.stderr)
    return 0


def _summary(payload: dict[str, Any]) -> None:
    g = payload["gpu_check"]
    composed = next(r for r in payload["results"] if r["name"] == "composed_epoch")
    print(f"device: {payload['machine'].get('device')} ({payload['options']['sizes'][0]} sizes)")
    print(f"one 600-epoch run, composed: {composed['derived']['run_600_epochs']}")
    fp = g["fast_paths"]
    if fp.get("tried"):
        for name, c in fp["components"].items():
            print(f"fast path {name}: {c['fastest_equal']} (x{c['speedup']:.2f} over eager)")
    else:
        print(f"fast paths: not tried ({fp['why']})")
    print(
        "packing slowdown: " + ", ".join(f"{k} per GPU x{v:.2f}" for k, v in g["slowdown"].items())
    )
    pe = g["pilot_epochs"]["epoch_phase_s"]
    print("pilot epoch: " + ", ".join(f"{k} {v:.2f} s" for k, v in pe.items()))
    print("wall: " + ", ".join(f"{k} {v:.0f} s" for k, v in g["wall_s"].items()))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(main())
