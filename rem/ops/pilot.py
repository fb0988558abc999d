"""The pilot's cost and disk sections: the full paper config priced in the pilot's own
measured units, and the disk its runs used and the sweep will need.

Units (rem.results.reports.pilot): seconds per epoch of each phase, medians over the epochs in
which the phase ran, and seconds per test episode. Packed pilot runs (K per GPU) measure
each phase slowed by packing; with a run of the same config trained alone (`pilot_solo`)
the slowdown is measured (the paper run's time in packed units over the same in solo
units), and the alone units are the packed ones divided by it. Without it the packed units
stand for alone ones (an overestimate, said so).
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from rem.config import config_from_dict
from rem.ops.plan import Measurement, plan_sweep
from rem.results.reports.pilot import evaluation_episode_seconds, phase_seconds, run_seconds
from rem.runs.files import read_manifest, read_metrics
from rem.runs.layout import METRICS
from rem.runs.sweep import Sweep, load_sweep
from rem.training.disk import estimate_run, human, measure_run, rates_from_runs


def _units(run: Path) -> tuple[dict[str, float], float | None, Any, dict[str, Any]]:
    manifest = read_manifest(run)
    cfg = config_from_dict(manifest["config"])
    rows = [r for r in read_metrics(run) if not r.get("final")]
    return phase_seconds(rows, cfg), evaluation_episode_seconds(rows), cfg, manifest


def measured_units(runs: list[Path]) -> dict[str, Any]:
    """Median units over the runs, the device they ran on and one run's config."""
    units = [_units(r) for r in runs]
    phases = {p for u in units for p in u[0]}
    per_phase = {p: statistics.median(u[0][p] for u in units if p in u[0]) for p in sorted(phases)}
    episodes = [u[1] for u in units if u[1] is not None]
    manifest = units[0][3]
    return {
        "epoch_phase_s": per_phase,
        "eval_episode_s": statistics.median(episodes) if episodes else 0.0,
        "cfg": units[0][2],
        "device": f"{manifest.get('device_name') or 'unknown'} ({manifest.get('device', '?')})",
        "device_type": str(manifest.get("device", "")),
    }


def _paper_run_s(sweep: Sweep, units: dict[str, Any]) -> float:
    from rem.config import load_config

    v = "rem" if "rem" in sweep.variants else next(iter(sweep.variants))
    cfg = load_config(sweep.preset, v, sweep.variants[v]["overrides"])
    return run_seconds(cfg, units["epoch_phase_s"], 0.0, units["eval_episode_s"])


def pilot_cost(runs: list[Path], solo: Path | None, k: int, gpus: int) -> dict[str, Any]:
    """The report's cost section and the units `rem plan --pilot` reads."""
    sweep = load_sweep(None)  # config/config.yaml: the paper protocol
    packed = measured_units(runs)
    notes, slowdown, alone = [], {}, dict(packed["epoch_phase_s"])
    line = None
    if solo is not None and (solo / METRICS).is_file():
        solo_units = measured_units([solo])
        factor = _paper_run_s(sweep, packed) / _paper_run_s(sweep, solo_units)
        slowdown[str(k)] = factor
        alone = {p: s / factor for p, s in alone.items()}
        line = (
            f"Packing slowdown measured: a run's time with {k} runs per GPU is x{factor:.2f} "
            f"its time alone, so {k} runs per GPU give x{k / factor:.2f} the throughput of one"
            f" ({'pack' if k / factor > 1.05 else 'do not pack'} for the sweep)."
        )
    elif k > 1:
        notes.append(f"{k} runs per GPU and no solo run: the units include packing's slowdown")
    else:
        line = "One run per GPU: no packing slowdown to measure (runs_per_gpu: 3 measures it)."
    units = {**packed, "epoch_phase_s": alone}
    if packed["cfg"].to_dict() != _paper_cfg(sweep).to_dict():
        notes.append(
            "the pilot's runs are not the paper preset's: the full config's figures below "
            "price the paper schedule in these runs' units, not a paper run's"
        )
    cost = {
        "epoch_phase_s": alone,
        "evaluation_s": units["eval_episode_s"] * packed["cfg"].evaluation.episodes,
        "eval_episode_s": units["eval_episode_s"],
        "device": packed["device"],
        "device_type": packed["device_type"],
        "runs_per_gpu": k,
        "slowdown": slowdown,
        "slowdown_note": line,
        "notes": notes,
    }
    cost["full_config"] = _full_config_lines(sweep, cost, gpus, k)
    return cost


def _paper_cfg(sweep: Sweep):
    from rem.config import load_config

    return load_config(sweep.preset, "rem", sweep.variants.get("rem", {}).get("overrides", []))


def _full_config_lines(sweep: Sweep, cost: dict[str, Any], gpus: int, k: int) -> list[str]:
    from rem.config import load_config

    per_run = {}
    for v in sweep.variants:
        cfg = load_config(sweep.preset, v, sweep.variants[v]["overrides"])
        per_run[v] = run_seconds(cfg, cost["epoch_phase_s"], 0.0, cost["eval_episode_s"])
    m = Measurement("the pilot", cost["device"], per_run, statistics.median(per_run.values()),
                    slowdown=cost["slowdown"])  # fmt: skip
    hours = ", ".join(f"{v} {s / 3600:.1f} h" for v, s in per_run.items())
    lines = [f"one run alone, 600 epochs: {hours}"]
    for packing in sorted({1, k}):
        p = plan_sweep(sweep, m, gpus=gpus, runs_per_gpu=packing)
        for pl in p.placements:
            lines.append(
                f"{sum(p.runs.values())} runs on {gpus} GPUs, {packing} per GPU (slowdown "
                f"x{pl.slowdown:.2f}): {pl.gpu_hours:,.0f} GPU-hours, wall-clock "
                f"{pl.wall_s / 3600:,.0f} h ({pl.wall_s / 86400:.1f} days)"
            )
    return lines


def pilot_disk(runs: list[Path]) -> dict[str, Any]:
    """What the pilot runs hold, and the full config's needs from their rates."""
    measured = [measure_run(r) for r in runs]
    lines = []
    for r in measured:
        kinds = ", ".join(f"{k} {human(b)}" for k, b in r.bytes.items() if b)
        lines.append(f"{r.path}: {human(r.total)} ({kinds})")
    rates = rates_from_runs(measured, f"the {len(measured)} pilot runs")
    out: dict[str, Any] = {"runs": [r.total for r in measured]}
    if rates is None:
        return {**out, "lines": lines + ["no pilot run holds a replay yet"]}
    lines.append(f"replay: {rates.replay_per_step / 1e3:,.1f} KB per agent step (measured)")
    sweep = load_sweep(None)
    one = estimate_run(_paper_cfg(sweep), rates)
    mark = "~" if one.scaled else ""
    lines.append(f"one paper run (600 epochs): {mark}{human(one.total)} (" + ", ".join(
        f"{k} {mark}{human(b)}" for k, b in one.bytes.items() if b) + ")")  # fmt: skip
    lines += [f"note: {n}" for n in one.notes]
    from rem.config import load_config
    from rem.training.disk import free_bytes

    total = 0.0
    for v, n in Counter(key.variant for key in sweep.runs).items():
        cfg = load_config(sweep.preset, v, sweep.variants[v]["overrides"])
        total += n * estimate_run(cfg, rates).total
    lines.append(
        f"the whole paper config ({len(sweep.runs)} runs): {mark}{human(total)}; "
        f"{human(free_bytes(sweep.runs_dir))} free where its runs folder "
        f"({sweep.runs_dir}) would be"
    )
    return {**out, "lines": lines, "one_paper_run_bytes": one.total}
