"""`rem plan`: GPU-hours and wall-clock of a sweep before it is launched, from measured times."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rem.cli import UserError

if TYPE_CHECKING:
    from rem.ops.plan import Plan


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="GPU-hours and wall-clock of a workflow config on G GPUs, from measured epoch times",
        description=(
            "Cost of the workflow config's runs before launch: GPU-hours and wall-clock on "
            "--gpus G with K runs per GPU, from a measurement: this config's finished runs "
            "(their metrics.jsonl), or an epoch benchmark (`python -m benchmarks epoch --json "
            "FILE`). It says which measurement and device it used; with none, how to get one."
        ),
    )
    parser.add_argument(
        "--configfile",
        action="append",
        metavar="CONFIG",
        help="workflow config on top of config/config.yaml, as for snakemake (repeatable)",
    )
    parser.add_argument("--gpus", type=int, required=True, help="GPUs available (G)")
    parser.add_argument(
        "--runs-per-gpu",
        type=int,
        help="training runs sharing one GPU (K; default: the config's packing.runs_per_gpu)",
    )
    parser.add_argument(
        "--bench", metavar="FILE", help="an epoch benchmark JSON (default: finished runs first)"
    )
    parser.add_argument(
        "--bench-dir",
        metavar="DIR",
        help="where to look for benchmark JSONs when there is no finished run (default "
        "benchmarks/out of this checkout)",
    )
    parser.add_argument(
        "--slowdown",
        type=float,
        help="how many times slower a run is when K runs share its GPU (default: print the "
        "range from 1, no contention, to K, a GPU already busy)",
    )
    parser.add_argument(
        "--pilot",
        metavar="FILE",
        help="a pilot report's pilot.json (default: finished runs first, then "
        "results/runs/pilot/report/pilot.json)",
    )
    parser.add_argument(
        "--disk-margin",
        type=float,
        default=0.1,
        help="free space asked beyond the estimate, as a fraction (default 0.1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.set_defaults(func=run)


def _h(hours: float) -> str:
    return f"{hours:,.1f} h" if hours < 48 else f"{hours:,.0f} h ({hours / 24:,.1f} days)"


def run(args: argparse.Namespace) -> int:
    from rem.ops.plan import BENCH_DIR, disk_plan, find_measurement, plan_sweep
    from rem.runs.sweep import SweepError, load_sweep

    _check_numbers(args)
    try:
        sweep = load_sweep(args.configfile)
    except SweepError as err:
        raise UserError(str(err)) from err
    try:
        measurement = find_measurement(
            sweep, args.bench, args.bench_dir or BENCH_DIR, pilot=args.pilot
        )
    except SweepError as err:
        raise UserError(str(err)) from err
    try:
        result = plan_sweep(
            sweep,
            measurement,
            gpus=args.gpus,
            runs_per_gpu=args.runs_per_gpu,
            slowdown=args.slowdown,
        )
    except SweepError as err:
        raise UserError(str(err)) from err
    result.disk = disk_plan(sweep, args.disk_margin)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        _print_plan(result, slowdown_given=args.slowdown is not None)
        _print_disk(result.disk, sum(result.runs.values()))
        if result.measurement.published:
            _print_how_to_measure()
    return 0


def _print_how_to_measure() -> None:
    from rem.ops.plan import HOW_TO_MEASURE_ALL

    print("measure it on your machine (then `rem plan` again uses the measurement):")
    for line in HOW_TO_MEASURE_ALL:
        print(f"    {line}")


def _print_disk(disk: dict, runs: int) -> None:
    """Disk per run (by kind) and for the whole config, next to the free space."""
    from rem.training.disk import human

    free = human(disk["free_bytes"])
    if not disk["measured"]:
        print(
            "disk: LOWER BOUND from raw frame bytes and parameter counts, no finished run "
            "measured (run the quick DAG, `snakemake --cores 2 --configfile "
            "config/quick.yaml`, about 3 minutes, or the pilot; then `rem plan` measures bytes)"
        )
    else:
        scaled = " (scaled to this config, marked ~)" if disk["scaled"] else ""
        print(f"disk: from {disk['source']}{scaled}")
    print(f"    replay {disk['replay_bytes_per_step'] / 1e3:,.1f} KB per agent step")
    for variant, est in disk["per_run"].items():
        mark = "~" if est["scaled"] else ""
        kinds = ", ".join(f"{k} {mark}{human(b)}" for k, b in est["bytes"].items() if b)
        print(f"    one {variant} run: {mark}{human(est['total'])} ({kinds})")
        for note in est["notes"]:
            print(f"      note: {note}")
    verdict = (
        "fits"
        if disk["fits"]
        else f"WILL NOT FIT (free at least {human(disk['total_bytes'] * (1 + disk['margin']))}"
        f" with the {disk['margin']:.0%} margin, or use a larger file system)"
    )
    print(
        f"    whole config ({runs} runs): {human(disk['total_bytes'])}; {free} free in "
        f"{disk['runs_dir']}: {verdict}"
    )


def _check_numbers(args: argparse.Namespace) -> None:
    if args.gpus < 1:
        raise UserError(f"--gpus {args.gpus}: give the number of GPUs, at least 1")
    if args.runs_per_gpu is not None and args.runs_per_gpu < 1:
        raise UserError(f"--runs-per-gpu {args.runs_per_gpu}: at least 1")
    if args.slowdown is not None and args.slowdown <= 0:
        raise UserError(f"--slowdown {args.slowdown}: a positive factor (1 = no slowdown)")


def _print_plan(result: Plan, slowdown_given: bool) -> None:
    """The plan as text: the runs, the measurement, then per sharing slowdown the hours."""
    from rem.runs.sweep import display_path

    total = sum(result.runs.values())
    per_variant = ", ".join(f"{v} {n}" for v, n in result.runs.items())
    epochs = sorted(set(result.epochs.values()))
    print(
        f"config: {' + '.join(map(display_path, result.config))} (preset {result.preset}): "
        f"{total} runs "
        f"({per_variant}), {'/'.join(map(str, epochs))} epochs each"
    )
    m = result.measurement
    print(f"measurement: {m.source}")
    print(f"device: {m.device}")
    hours = ", ".join(f"{v} {_h(s / 3600)}" for v, s in m.per_run_s.items())
    print(f"one run: {hours}")
    for note in m.notes + result.notes:
        print(f"note: {note}")
    pack = f"{result.runs_per_gpu} runs per GPU" if result.runs_per_gpu > 1 else "one run per GPU"
    print(f"on {result.gpus} GPU(s), {pack} ({result.slots} runs at a time):")
    for p in result.placements:
        label = ""
        if len(result.placements) > 1 or result.runs_per_gpu > 1:
            label = f"  sharing slowdown x{p.slowdown:g}" + (
                " (no contention)"
                if p.slowdown == 1
                else " (the GPU was already busy: no gain from packing)"
                if p.slowdown == result.runs_per_gpu and not slowdown_given
                else ""
            )
            print(label)
        print(f"    GPU-hours   {_h(p.gpu_hours)}  (run-hours {_h(p.run_hours)})")
        print(f"    wall-clock  {_h(p.wall_s / 3600)}")
