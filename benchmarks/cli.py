"""Command line of the benchmarks: pick suites, sizes and device; print a table, write JSON.

    python -m benchmarks                      # every suite, device auto, sizes for the device
    python -m benchmarks --quick              # CI-friendly: tiny sizes, a couple of minutes on CPU
    python -m benchmarks world_model imagination --device cuda --sizes paper
    python -m benchmarks env --json out.json

Sizes: `paper` = the paper's models and batch sizes; `reduced` = the paper's models with the
batch divided by 8 (what a CPU can time in minutes; per-sample costs extrapolate);
`tiny` = the `quick` preset's models and batches (the CI smoke size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness import (
    BenchError,
    BenchResult,
    default_json_path,
    machine_info,
    print_table,
    resolve_device,
    write_json,
)

# suite name -> module with `run(args) -> list[BenchResult]`
SUITES: dict[str, str] = {
    "env": "benchmarks.env_bench:bench_env",
    "evaluate": "benchmarks.env_bench:bench_evaluation",
    "retention": "benchmarks.retention_bench",
    "tokenizer": "benchmarks.model_bench:tokenizer",
    "world_model": "benchmarks.model_bench:world_model",
    "imagination": "benchmarks.model_bench:imagination",
    "actor_critic": "benchmarks.model_bench:actor_critic",
    "epoch": "benchmarks.epoch_bench",
    "checks": "benchmarks.model_bench:checks",
}
SIZES = ("paper", "reduced", "tiny")


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Speed benchmarks of the REM hot paths (median and spread over repeats, "
        "peak memory, configuration) as a table and JSON.",
    )
    p.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help=f"suites to run (default: all): {', '.join(SUITES)}",
    )
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda[:N]")
    p.add_argument(
        "--sizes",
        default=None,
        help="comma-separated from paper,reduced,tiny (default: paper on cuda, reduced on cpu, "
        "tiny with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (CI smoke)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5, quick 3)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per benchmark; repeats are lowered to fit (never below 3). "
        "Default 60, quick 5",
    )
    p.add_argument(
        "--bf16", action="store_true", help="bf16 autocast for model steps (CUDA only; a lever)"
    )
    p.add_argument(
        "--no-counts",
        action="store_true",
        help="skip the extra op/FLOP-counting run of each model benchmark",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    p.add_argument("--game", default="Breakout", help="game for env and model benchmarks")
    p.add_argument(
        "--json", type=Path, default=None, help="write JSON here (default benchmarks/out/)"
    )
    p.add_argument("--no-table", action="store_true", help="do not print the table")
    return p


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        raise BenchError(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    args.suites = args.suites or list(SUITES)
    args.device = resolve_device(args.device)
    if args.sizes is None:
        args.sizes = (
            ["tiny"] if args.quick else (["paper"] if args.device.type == "cuda" else ["reduced"])
        )
    else:
        args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        bad = [s for s in args.sizes if s not in SIZES]
        if bad:
            raise BenchError(f"unknown size(s) {', '.join(bad)}; choose from {', '.join(SIZES)}")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1:
        raise BenchError("--repeats must be >= 1")
    if args.budget is None:
        args.budget = 5.0 if args.quick else 60.0
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def _load(spec: str):
    module, _, attr = spec.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr or "run")


def _payload(args, started, machine, suite_times, skipped, results, done: bool) -> dict[str, Any]:
    return {
        "schema": "rem-bench/1",
        "complete": done,  # False in the partial file written after each suite
        "started_utc": started,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "options": {
            "suites": args.suites,
            "sizes": args.sizes,
            "quick": args.quick,
            "repeats": args.repeats,
            "budget_s": args.budget,
            "device": str(args.device),
            "game": args.game,
            "bf16": args.bf16,
            "threads": torch.get_num_threads(),
        },
        "machine": machine,
        "suite_wall_s": suite_times,
        "skipped": skipped,
        "results": [r.to_json() for r in results],
        "targets": targets(results, args.device),
    }


def run_suites(args: argparse.Namespace, path: Path) -> tuple[dict[str, Any], list[BenchResult]]:
    """Run the suites; the JSON at `path` is rewritten after each one (a long run that is
    stopped keeps what it measured)."""
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    machine = machine_info(args.device)
    results: list[BenchResult] = []
    suite_times: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in args.suites:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            results.extend(_load(SUITES[name])(args))
        except ModuleNotFoundError as err:
            # A pipeline component that is not there: say so loudly, keep the other suites.
            if not (err.name or "").startswith("rem"):
                raise
            skipped[name] = f"needs {err.name}, which does not exist in this checkout"
            print(f"[bench] SKIPPED {name}: {skipped[name]}", file=sys.stderr, flush=True)
        suite_times[name] = round(time.perf_counter() - t0, 1)
        write_json(path, _payload(args, started, machine, suite_times, skipped, results, False))
    machine["loadavg_1_5_15_end"] = list(os.getloadavg())
    payload = _payload(args, started, machine, suite_times, skipped, results, True)
    write_json(path, payload)
    return payload, results


def _find(results: list[BenchResult], suite: str, name: str, size: str) -> BenchResult | None:
    return next((r for r in results if (r.suite, r.name, r.size) == (suite, name, size)), None)


def targets(results: list[BenchResult], device: torch.device) -> dict[str, Any]:
    """The speed targets (README, Performance), evaluated from whatever this invocation measured.

    The GPU targets are stated for one H100 at the paper's sizes; on another device (or size)
    the figures are reported for information, with `applies: false`.
    """
    out: dict[str, Any] = {}
    h100 = device.type == "cuda" and "H100" in torch.cuda.get_device_name(device)
    for size in SIZES:
        wm = _find(results, "world_model", "train_step_pop", size)
        im = _find(results, "imagination", "rollout_pop", size)
        im_no = _find(results, "imagination", "rollout_nopop", size)
        ep = _find(results, "epoch", "composed_epoch", size)
        paper_gpu = {"applies": h100 and size == "paper"}
        if wm and im:
            total = wm.derived["per_epoch_s"] + im.derived["per_epoch_s"]
            out[f"wm_train_plus_imagination_per_epoch ({size})"] = {
                "value_s": round(total, 2),
                "target_s": 29.5,
                "pass": total <= 29.5,
                **paper_gpu,
            }
        if im and im_no:
            ratio = im_no.median_s / im.median_s
            out[f"nopop_imagination_slowdown ({size})"] = {
                "value": round(ratio, 2),
                "target": ">= 4",
                "pass": ratio >= 4,
                "applies": h100 and size == "paper",
            }
        if ep:
            run_s = ep.derived["run_600_epochs_s"]
            out[f"run_600_epochs ({size})"] = {
                "value_h": round(run_s / 3600, 2),
                "target_h": 6,
                "pass": run_s <= 6 * 3600,
                **paper_gpu,
            }
    stack = next((r for r in results if (r.suite, r.name) == ("env", "train_stack")), None)
    if stack:
        out["env_wrapper_overhead"] = {
            "value": stack.derived["wrapper_overhead_vs_raw"],
            "target": "<= +10%",
            "pass": stack.derived["wrapper_overhead_pass"],
            "applies": True,
        }
        out["env_wrapper_logic_overhead (without the protocol's resize)"] = {
            "value": stack.derived["split_vs_raw"]["wrapper_logic"],
            "resize_share": stack.derived["split_vs_raw"]["protocol_resize"],
            "target": "<= +10%",
            "pass": stack.derived["wrapper_logic_overhead_pass"],
            "applies": True,
        }
    checks = next((r for r in results if r.suite == "checks"), None)
    if checks:
        totals = checks.derived["runtime_sync_totals_in_rem"]
        out["host_device_syncs_per_training_step"] = {
            "value": totals,
            "target": "0 in every step kind",
            "pass": not any(totals.values()),
            "applies": True,
        }
    for r in results:
        if r.suite == "retention" and "speedup_chunkwise_over_recurrent" in r.derived:
            n = r.config["n"]
            ch = r.derived["speedup_chunkwise_over_recurrent"]
            pa = r.derived["speedup_parallel_over_recurrent"]
            out[f"retention_dominance (n={n})"] = {
                "chunkwise_over_recurrent": ch,
                "parallel_over_recurrent": pa,
                "pass": ch["measured"] > 1 and pa["measured"] > 1,
                "applies": True,
            }
    return out


def print_targets(found: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not found:
        return
    table = Table(title="targets")
    for col in ("target", "figure", "pass", "applies here"):
        table.add_column(col, overflow="fold")
    for name, t in found.items():
        figure = {k: v for k, v in t.items() if k not in {"pass", "applies"}}
        table.add_row(name, str(figure), str(t["pass"]), str(t["applies"]))
    Console(width=200).print(table)


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gpu-check"]:  # one command for a GPU's fitness (benchmarks/gpu_check.py)
        from benchmarks.gpu_check import main as gpu_check

        return gpu_check(argv[1:], prog=f"{prog} gpu-check")
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        args = _resolve(args)
        path = args.json or default_json_path(args.device)
        payload, objects = run_suites(args, path)
    except BenchError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    if not args.no_table:
        print_table(objects, title=f"REM benchmarks on {payload['machine']['device']}")
        print_targets(payload["targets"])
    print(f"[bench] JSON written to {path}", file=sys.stderr)
    return 0
