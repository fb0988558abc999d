"""What a sweep will cost before it is launched: GPU-hours and wall-clock from measured times.

A measurement gives the seconds of one whole run, per variant where it can:
  - finished runs of this config (the config's runs_dir): the median training time of the
    completed runs of each variant (their own metrics.jsonl, `time/elapsed` + the final
    evaluation); a variant without a finished run takes the median over all of them;
  - an epoch benchmark JSON (`python -m benchmarks epoch --json FILE`): for the paper preset
    the `composed_epoch` run time at size `paper` (or, on a CPU, size `reduced` with the three
    training phases scaled by the batch ratio, 8: per-sample cost on a compute-bound CPU);
    for the quick preset the trainer's own `measured_epoch` (size tiny). It times variant
    `rem`; other variants are assumed to cost the same (said in the output).
  - a pilot (`snakemake pilot`, config/pilot.yaml): its report's pilot.json holds the
    median seconds per epoch of each phase (collection, tokenizer, world model, actor-critic)
    from epochs in which that phase ran, and per evaluation; a variant's run is its own
    schedule counted in those units (rem.results.reports.pilot.run_seconds);
  - with nothing measured, the paper's own claim (PUBLISHED_CLAIMS, per variant), marked
    "published claim, not measured here", followed by the commands that measure it.
Then the runs are placed on G GPUs x K runs per GPU (longest first, each on the slot that
frees first). K runs sharing a GPU slow each other down by a factor between 1 (the GPU had
room: REM's models are small) and K (the GPU was already the bottleneck); unless
`--slowdown` gives it, both ends are printed.
"""

from __future__ import annotations

import heapq
import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rem.runs.sweep import (
    ROOT,
    Sweep,
    SweepError,
    display_path,
    variant_epochs,
    variant_preset,
)

BENCH_DIR = ROOT / "benchmarks" / "out"
REDUCE = 8  # batch divisor of the benchmarks' "reduced" size (benchmarks/model_bench.py)
PAPER_SCHEDULE_EPOCHS = 600  # the benchmarks' composed run is the paper's 600-epoch schedule
HOW_TO_MEASURE = (
    "measure one: `python -m benchmarks epoch --device cuda --sizes paper --json "
    "benchmarks/out/epoch.json` on the GPU you will use (minutes; on a CPU: --device cpu "
    "--sizes reduced), or finish one run of this config; then `rem plan --bench FILE` or "
    "just `rem plan` again"
)


# What the authors state a run costs, per variant (agent); the fallback before anything is
# measured here. Other agents add their own entry.
@dataclass(frozen=True)
class PublishedClaim:
    hours_per_run: float  # an upper bound ("under N hours")
    epochs: int  # the schedule the claim is for
    source: str


PUBLISHED_CLAIMS = {
    "rem": PublishedClaim(
        12.0,
        PAPER_SCHEDULE_EPOCHS,
        "Cohen et al., ICML 2024 (arXiv 2402.05643), abstract: REM trains in under 12 hours "
        "per run on one GPU",
    ),
}
PILOT_JSON = Path("results/runs/pilot/report/pilot.json")  # config/pilot.yaml's report
HOW_TO_MEASURE_ALL = (
    "snakemake pilot --configfile config/pilot.yaml --profile profiles/local  "
    "# 3 runs x 100 epochs, measures every phase (README: Before a sweep)",
    "python -m benchmarks gpu-check --json benchmarks/out/gpu-check.json  "
    "# 8 minutes on one GPU: phases at paper size, packing slowdown",
    "python -m benchmarks epoch --device cuda --sizes paper --json benchmarks/out/epoch.json",
)


@dataclass
class Measurement:
    source: str  # what was measured, where
    device: str
    per_run_s: dict[str, float]  # variant -> seconds of one whole run
    default_s: float  # variants without their own figure
    notes: list[str] = field(default_factory=list)
    on_cpu: bool = False  # measured on a CPU
    published: bool = False  # the authors' claim, not measured here
    slowdown: dict[str, float] = field(default_factory=dict)  # K runs per GPU -> measured


@dataclass
class Placement:
    slowdown: float
    run_hours: float
    gpu_hours: float
    wall_s: float


@dataclass
class Plan:
    config: list[str]
    preset: str
    runs: dict[str, int]  # variant -> runs
    epochs: dict[str, int]
    gpus: int
    runs_per_gpu: int
    gpus_per_run: int
    slots: int  # runs at a time
    measurement: Measurement
    placements: list[Placement]
    notes: list[str] = field(default_factory=list)
    disk: dict[str, Any] | None = None  # rem.ops.plan.disk_plan

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- measurements


def from_runs(sweep: Sweep) -> Measurement | None:
    """Median training time of this config's completed runs, per variant (None: none yet)."""
    from rem.ops.status import collect

    if not sweep.runs_dir.is_dir():
        return None
    status = collect(sweep.runs_dir, sweep=sweep)
    done = [r for r in status.runs if r.state == "completed" and r.elapsed_s and r.in_config]
    if not done:
        return None
    per_variant: dict[str, list[float]] = {}
    for r in done:
        per_variant.setdefault(r.variant, []).append(r.elapsed_s)
    devices = Counter(r.device or "unknown device" for r in done)
    device = ", ".join(f"{d} ({n} runs)" for d, n in devices.most_common())
    notes = []
    if len(devices) > 1:
        notes.append("the finished runs ran on different devices; the figures mix them")
    return Measurement(
        source=(
            f"{len(done)} finished run(s) in {sweep.runs_dir} (median training time per variant: "
            + ", ".join(f"{v} {len(x)} run(s)" for v, x in per_variant.items())
            + ")"
        ),
        device=device,
        per_run_s={v: statistics.median(x) for v, x in per_variant.items()},
        default_s=statistics.median(r.elapsed_s for r in done),
        notes=notes,
        on_cpu=all(r.device_type == "cpu" for r in done),
    )


def _bench_device(payload: dict[str, Any]) -> str:
    machine = payload.get("machine") or {}
    option = (payload.get("options") or {}).get("device", machine.get("device", "?"))
    name = machine.get("cuda_device") or machine.get("cpu") or "unknown"
    return f"{name} ({option})"


def from_bench(path: Path, sweep: Sweep) -> Measurement:
    """One run's seconds from an epoch benchmark JSON; SweepError saying why it cannot."""
    payload = _read_bench(path)
    notes = ["the benchmark times variant rem; every variant is assumed to cost the same"]
    measured = None
    if sweep.preset == "paper":
        measured = _paper_measurement(path, payload, sweep, notes)
    if sweep.preset == "quick":
        measured = _quick_measurement(path, payload, sweep, notes)
    if measured is not None:  # gpu-check also measured K runs per GPU
        slowdown = ((payload.get("gpu_check") or {}).get("slowdown")) or {}
        measured.slowdown = {str(k): float(v) for k, v in slowdown.items()}
        return measured
    raise SweepError(
        f"the config's preset {sweep.preset!r} has no benchmark size (the benchmarks time the "
        "paper and quick presets); finish one run of this config, then `rem plan` again"
    )


def _read_bench(path: Path) -> dict[str, Any]:
    """The payload of a `python -m benchmarks` JSON; SweepError when it is not one."""
    try:
        payload = json.loads(Path(path).read_text())
    except OSError as err:
        raise SweepError(f"benchmark file {path}: {err.strerror}; {HOW_TO_MEASURE}") from err
    except ValueError as err:
        raise SweepError(f"benchmark file {path} is not JSON; {HOW_TO_MEASURE}") from err
    if not isinstance(payload, dict) or payload.get("schema") != "rem-bench/1":
        raise SweepError(
            f"{path} is not a `python -m benchmarks` JSON (no schema rem-bench/1); {HOW_TO_MEASURE}"
        )
    return payload


def _bench_result(payload: dict[str, Any], name: str, size: str) -> dict | None:
    """The epoch suite's result `name` at `size` (None: not measured)."""
    return next(
        (
            r
            for r in payload.get("results") or []
            if r.get("suite") == "epoch" and r.get("name") == name and r.get("size") == size
        ),
        None,
    )


def _bench_on_cpu(payload: dict[str, Any]) -> bool:
    return "cpu" in str((payload.get("options") or {}).get("device", ""))


def _composed_epoch(path: Path, payload: dict[str, Any]) -> tuple[dict, float]:
    """The composed paper epoch and the factor its training phases need: size paper, else
    size reduced measured on a CPU (x REDUCE)."""
    composed, scale = _bench_result(payload, "composed_epoch", "paper"), 1.0
    if composed is None:
        composed = _bench_result(payload, "composed_epoch", "reduced")
        if composed is not None and not _bench_on_cpu(payload):
            raise SweepError(
                f"{path} measured size 'reduced' (batch / {REDUCE}) on a GPU, where time "
                f"does not scale with the batch; {HOW_TO_MEASURE}"
            )
        scale = REDUCE if composed is not None else scale
    if composed is None:
        results = payload.get("results") or []
        sizes = sorted({r.get("size") for r in results if r.get("suite") == "epoch"})
        raise SweepError(
            f"{path} has no composed_epoch at size paper or reduced (epoch sizes: "
            f"{', '.join(map(str, sizes)) or 'none'}); {HOW_TO_MEASURE}"
        )
    return composed, scale


def _phase_hours(payload: dict[str, Any], derived: dict[str, Any]) -> tuple[dict, str]:
    """Hours of one paper run per phase, and the basis: wall time, or process CPU time on a
    shared, overloaded CPU (the better estimate there, see epoch_bench)."""
    machine = payload.get("machine") or {}
    by_phase = dict(derived.get("run_by_phase_h") or {})
    load = (machine.get("loadavg_1_5_15") or [0])[0]
    usable = machine.get("cpus_usable") or machine.get("cpu_count") or 1
    cpu_based = derived.get("cpu_time_based") or {}
    if "cpu" in _bench_device(payload) and load > usable and cpu_based.get("epoch_by_phase_s"):
        wall_epoch = derived.get("epoch_by_phase_s") or {}
        ratio = {
            k: cpu_based["epoch_by_phase_s"][k] / wall_epoch[k]
            for k in ("tokenizer", "world_model", "actor_critic", "collection")
            if wall_epoch.get(k)
        }
        by_phase = {k: v * ratio.get(k, 1.0) for k, v in by_phase.items()}
        return (
            by_phase,
            f"process CPU time (the machine's load {load:.1f} exceeded its {usable} CPUs)",
        )
    return by_phase, "wall time"


def _paper_measurement(
    path: Path, payload: dict[str, Any], sweep: Sweep, notes: list[str]
) -> Measurement:
    """The paper preset: the composed epoch's run time, scaled to each variant's epochs."""
    composed, scale = _composed_epoch(path, payload)
    derived = composed.get("derived") or {}
    by_phase, basis = _phase_hours(payload, derived)
    if scale != 1.0:
        for k in ("tokenizer", "world_model", "actor_critic"):
            by_phase[k] = by_phase.get(k, 0.0) * scale
        notes.append(
            f"measured at size reduced (paper models, batch / {REDUCE}) on a CPU; the three "
            f"training phases are scaled x{REDUCE} (per-sample cost; a CPU is compute-bound). "
            "For the real figure run the benchmark with --sizes paper"
        )
    run_s = sum(by_phase.values()) * 3600
    epochs = {variant_epochs(sweep, v) for v in sweep.variants}
    per_run = {v: run_s * variant_epochs(sweep, v) / PAPER_SCHEDULE_EPOCHS for v in sweep.variants}
    if epochs != {PAPER_SCHEDULE_EPOCHS}:
        notes.append(f"scaled from the paper's {PAPER_SCHEDULE_EPOCHS}-epoch schedule")
    ev = derived.get("evaluation_assumption")
    if ev:
        notes.append(f"evaluation time assumes {ev}")
    source = (
        f"benchmark {display_path(path)} ({payload.get('finished_utc', '?')}): composed_epoch, "
        f"size {composed.get('size')}, {basis}, {run_s / 3600:.2f} h per "
        f"{PAPER_SCHEDULE_EPOCHS}-epoch run"
    )
    return Measurement(
        source,
        _bench_device(payload),
        per_run,
        statistics.median(per_run.values()),
        notes,
        _bench_on_cpu(payload),
    )


def _quick_measurement(
    path: Path, payload: dict[str, Any], sweep: Sweep, notes: list[str]
) -> Measurement:
    """The quick preset: the trainer's own measured epochs and evaluations at size tiny."""
    epoch = _bench_result(payload, "measured_epoch", "tiny")
    evaluation = _bench_result(payload, "measured_evaluation", "tiny")
    if epoch is None:
        raise SweepError(
            f"{path} has no measured_epoch at size tiny (the quick preset); run "
            "`python -m benchmarks epoch --sizes tiny --json FILE`"
        )
    from rem.config import load_config

    per_run = {}
    for v in sweep.variants:
        cfg = load_config(variant_preset(sweep, v), v, sweep.variants[v]["overrides"])
        n = cfg.run.epochs
        ev = statistics.median(evaluation["times_s"]) if evaluation else 0.0
        per_run[v] = n * statistics.median(epoch["times_s"]) + n // cfg.evaluation.every * ev
    notes.append("every epoch counted as a full one (the first epochs train less)")
    return Measurement(
        f"benchmark {display_path(path)} ({payload.get('finished_utc', '?')}): measured_epoch "
        "(the trainer's own epochs, quick preset)",
        _bench_device(payload),
        per_run,
        statistics.median(per_run.values()),
        notes,
        _bench_on_cpu(payload),
    )


def from_published(sweep: Sweep, why: str) -> Measurement:
    """The authors' claim per variant (a variant without one takes REM's, said so), scaled
    to each variant's epochs; `why`: what was looked for and not found."""
    per_run, notes, sources = {}, [why], set()
    for v in sweep.variants:
        agent = sweep.variants[v].get("agent", "rem")  # a variant costs as its agent
        claim = PUBLISHED_CLAIMS.get(v) or PUBLISHED_CLAIMS.get(agent) or PUBLISHED_CLAIMS["rem"]
        if v not in PUBLISHED_CLAIMS and agent not in PUBLISHED_CLAIMS:
            notes.append(f"{v}: no published figure for agent {agent}; REM's claim is used")
        sources.add(claim.source)
        per_run[v] = claim.hours_per_run * 3600 * variant_epochs(sweep, v) / claim.epochs
    notes.append("an upper bound stated by the authors on their GPU; yours may differ either way")
    return Measurement(
        source="published claim, not measured here: " + "; ".join(sorted(sources)),
        device="the authors' GPU (not measured here)",
        per_run_s=per_run,
        default_s=statistics.median(per_run.values()),
        notes=notes,
        published=True,
    )


def from_pilot(path: Path, sweep: Sweep) -> Measurement:
    """Each variant's run in the pilot's measured units (seconds per phase epoch)."""
    from rem.config import load_config
    from rem.results.reports.pilot import run_seconds

    try:
        payload = json.loads(Path(path).read_text())
        cost = payload["cost"]
        per_phase, per_eval = cost["epoch_phase_s"], cost["evaluation_s"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SweepError(
            f"pilot file {path} is not a pilot report's pilot.json ({err}); {HOW_TO_MEASURE}"
        ) from err
    per_run = {}
    for v in sweep.variants:
        cfg = load_config(variant_preset(sweep, v), v, sweep.variants[v]["overrides"])
        per_run[v] = run_seconds(cfg, per_phase, per_eval, cost.get("eval_episode_s"))
    notes = list(cost.get("notes") or [])
    if payload.get("preset") != sweep.preset:
        notes.append(
            f"the pilot ran preset {payload.get('preset')}, this config {sweep.preset}: its "
            "phase times do not carry over"
        )
    return Measurement(
        source=f"pilot {display_path(path)} ({payload.get('runs', '?')} runs, "
        f"{cost.get('runs_per_gpu', 1)} per GPU): measured seconds per phase epoch",
        device=str(cost.get("device", "unknown")),
        per_run_s=per_run,
        default_s=statistics.median(per_run.values()),
        notes=notes,
        on_cpu="cpu" in str(cost.get("device_type", "")),
        slowdown={str(k): float(x) for k, x in (cost.get("slowdown") or {}).items()},
    )


def find_measurement(
    sweep: Sweep,
    bench: str | Path | None,
    bench_dir: str | Path = BENCH_DIR,
    pilot: str | Path | None = None,
) -> Measurement:
    """--bench FILE or --pilot FILE if given; else this config's finished runs; else the
    pilot's pilot.json; else the newest usable benchmark in `bench_dir`; else the published
    claim (its notes say what was looked for)."""
    if bench is not None:
        return from_bench(Path(bench), sweep)
    if pilot is not None:
        return from_pilot(Path(pilot), sweep)
    measured = from_runs(sweep)
    if measured is not None:
        return measured
    if PILOT_JSON.is_file():
        return from_pilot(PILOT_JSON, sweep)
    reasons = []
    bench_dir = Path(bench_dir)
    files = sorted(bench_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files:
        try:
            return from_bench(path, sweep)
        except SweepError as err:
            reasons.append(str(err).split(";")[0])
    return from_published(
        sweep,
        f"nothing measured yet: no finished run in {sweep.runs_dir}, no pilot report "
        f"({PILOT_JSON}) and no usable epoch benchmark in {display_path(bench_dir)}"
        + (f" ({len(reasons)} file(s) did not fit: {reasons[0]})" if reasons else ""),
    )


# ----------------------------------------------------------------------------- placement


def wall_clock(durations: list[float], slots: int) -> float:
    """Makespan of runs placed longest first, each on the slot that frees first."""
    if not durations:
        return 0.0
    free = [0.0] * max(1, slots)
    for d in sorted(durations, reverse=True):
        t = heapq.heappop(free)
        heapq.heappush(free, t + d)
    return max(free)


def plan_sweep(
    sweep: Sweep,
    measurement: Measurement,
    *,
    gpus: int,
    runs_per_gpu: int | None = None,
    slowdown: float | None = None,
) -> Plan:
    """The sweep's runs placed on `gpus` GPUs with `runs_per_gpu` runs sharing each: run-
    and GPU-hours and wall-clock, per sharing slowdown (given, else 1 and K)."""
    k = runs_per_gpu or sweep.runs_per_gpu
    gpus_per_run = sweep.gpus_per_train_job
    notes = []
    slots = _slots(gpus, k, gpus_per_run, notes)
    counts = Counter(r.variant for r in sweep.runs)
    base = [measurement.per_run_s.get(r.variant, measurement.default_s) for r in sweep.runs]
    measured = measurement.slowdown.get(str(k)) if k > 1 else None
    if slowdown is None and measured is not None:
        slowdown = measured
        notes.append(f"sharing slowdown x{measured:.2f} at {k} runs per GPU: measured")
    factors = [slowdown] if slowdown is not None else ([1.0, float(k)] if k > 1 else [1.0])
    share = 1.0 if gpus_per_run == 0 else (gpus_per_run / k if gpus_per_run == 1 else gpus_per_run)
    placements = []
    for f in factors:
        durations = [d * f for d in base]
        run_hours = sum(durations) / 3600
        placements.append(Placement(f, run_hours, run_hours * share, wall_clock(durations, slots)))
    if measurement.on_cpu and gpus_per_run >= 1:
        notes.append(
            "measured on a CPU: every figure below is what this CPU would take per run "
            "(GPU-hours = CPU-run-hours here), far above a GPU's; measure on the GPU you will use"
        )
    missing = sorted(set(counts) - set(measurement.per_run_s))
    if missing and measurement.per_run_s:
        notes.append(
            f"no own measurement for {', '.join(missing)}: they take the median of the others"
        )
    return Plan(
        config=sweep.sources,
        preset=sweep.preset,
        runs=dict(counts),
        epochs={v: variant_epochs(sweep, v) for v in counts},
        gpus=gpus,
        runs_per_gpu=k,
        gpus_per_run=gpus_per_run,
        slots=slots,
        measurement=measurement,
        placements=placements,
        notes=notes,
    )


def _slots(gpus: int, k: int, gpus_per_run: int, notes: list[str]) -> int:
    """Runs at a time on `gpus` GPUs, K runs per GPU; SweepError when the two disagree."""
    if gpus_per_run == 0:
        notes.append(
            "the config trains on CPU (resources.train.gpu: 0): --gpus counts parallel jobs "
            "and GPU-hours are run-hours"
        )
        return gpus * k
    if gpus_per_run == 1:
        return gpus * k
    if k > 1:
        raise SweepError(
            f"--runs-per-gpu {k} needs one GPU per run, but resources.train.gpu is "
            f"{gpus_per_run}; set it to 1 or use --runs-per-gpu 1"
        )
    slots = gpus // gpus_per_run
    if slots == 0:
        raise SweepError(f"--gpus {gpus} is fewer than the {gpus_per_run} GPUs one run needs")
    return slots


# ----------------------------------------------------------------------------- disk

# Runs folders of the project's other workflow configs, measured when this config has no
# finished run yet (their rates are scaled to this config, and marked so).
OTHER_CONFIGS = ("quick.yaml", "pilot.yaml", "learning.yaml")


def rate_sources(sweep: Sweep) -> list[Path]:
    """Runs folders to measure disk rates from, this config's first."""
    dirs = [sweep.runs_dir]
    for name in OTHER_CONFIGS:
        dirs += [d for d in _config_runs_dir(name) if d not in dirs]
    return dirs


def find_rates(dirs: list[Path], max_runs: int = 5):
    """Disk rates from the first folder holding finished runs (at most `max_runs` read)."""
    from rem.training.disk import measure_runs

    for runs_dir in dirs:
        done = sorted(p.parent for p in Path(runs_dir).glob("*/*/*/COMPLETED"))[:max_runs]
        rates = measure_runs(done, f"{len(done)} finished run(s) in {display_path(runs_dir)}")
        if rates is not None:
            return rates
    return None


def disk_plan(sweep: Sweep, margin: float = 0.1) -> dict[str, Any]:
    """Bytes per run (per variant and kind) and for the whole config, next to the free space
    of the runs folder's file system; `fits` False when the sweep will not fit."""
    from rem.config import load_config
    from rem.training.disk import analytic_rates, estimate_run, free_bytes

    counts = Counter(r.variant for r in sweep.runs)
    rates = find_rates(rate_sources(sweep))
    free = free_bytes(sweep.runs_dir)
    measured = rates is not None
    per_variant = {}
    for v in counts:
        cfg = load_config(variant_preset(sweep, v), v, sweep.variants[v]["overrides"])
        # nothing measured: each variant's frames and parameters, a lower bound
        per_variant[v] = estimate_run(cfg, rates or analytic_rates(cfg)).to_json()
        rates_used = rates or analytic_rates(cfg)
    total = sum(per_variant[v]["total"] * n for v, n in counts.items())
    return {
        "measured": measured,
        "source": rates_used.source,
        "scaled": any(e["scaled"] for e in per_variant.values()),
        "replay_bytes_per_step": rates_used.replay_per_step,
        "per_run": per_variant,
        "total_bytes": total,
        "free_bytes": free,
        "margin": margin,
        "fits": free >= total * (1 + margin),
        "runs_dir": str(sweep.runs_dir),
    }


def headroom(cfg: Any, run_dir: Path, margin: float) -> str | None:
    """`rem train`'s check before writing: the refusal line when the run folder's file system
    lacks the bytes this run still needs (its estimate minus what the folder holds, plus
    the margin), else None. Rates: finished runs of its runs folder, then of the project's
    other configs, else the analytic lower bound (frames and parameters)."""
    from rem.training.disk import analytic_rates, check_headroom, estimate_run, measure_run

    # a workflow's run folder is <runs>/<variant>/<game>/<seed>: then its runs folder first
    layout = run_dir.name.isdigit() and run_dir.parent.name.isalpha() and len(run_dir.parts) > 3
    dirs = [run_dir.parents[2]] if layout else []
    for name in OTHER_CONFIGS:
        dirs += [d for d in _config_runs_dir(name) if d not in dirs]
    rates = find_rates(dirs) or analytic_rates(cfg)
    needed = estimate_run(cfg, rates).total
    if run_dir.is_dir():
        needed -= measure_run(run_dir).total
    return check_headroom(run_dir, max(0.0, needed), margin)


def _config_runs_dir(name: str) -> list[Path]:
    import yaml

    try:
        runs_dir = (yaml.safe_load((ROOT / "config" / name).read_text()) or {}).get("runs_dir")
    except (OSError, ValueError):
        return []
    return [Path(runs_dir)] if runs_dir else []
