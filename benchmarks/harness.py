"""Timing, memory and reporting shared by every benchmark suite.

One `measure` call = warm-up runs (not timed: allocator, autotuning, lazy init) followed by
timed repeats; on CUDA the device is synchronised before and after every timed repeat so a
repeat's time covers its kernels. The number of repeats adapts to a per-benchmark time
budget (never below `min_repeats`), so paper-size benchmarks stay affordable on a CPU.

Memory: on CPU the peak resident set size while the benchmark ran (Linux `VmHWM`, reset
through `/proc/self/clear_refs` before the warm-up; where that is not possible the process
lifetime peak from `resource`, and the record says which); on CUDA `max_memory_allocated`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rem.config import ConfigError
from rem.training.run_dir import git_info
from rem.utils.device import resolve_device as rem_resolve_device


class BenchError(RuntimeError):
    """A benchmark cannot run as asked; the message says why and what to do."""


# ----------------------------------------------------------------------------- device


def resolve_device(name: str) -> torch.device:
    """rem's device resolver (`rem.utils.device`), its errors as BenchError."""
    try:
        return rem_resolve_device(name, "--device")
    except ConfigError as err:
        raise BenchError(str(err)) from err


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- memory

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _status_kib(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryWindow:
    """Peak CPU RSS and CUDA allocation between `start()` and `stop()`."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rss_kind = "window"

    def start(self) -> None:
        if not _reset_peak_rss() or _status_kib("VmHWM") is None:
            self.rss_kind = "process-lifetime"
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> dict[str, Any]:
        hwm = _status_kib("VmHWM") if self.rss_kind == "window" else None
        if hwm is None:  # ru_maxrss is KiB on Linux
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.rss_kind = "process-lifetime"
        out: dict[str, Any] = {"peak_rss_mib": round(hwm / 1024, 1), "rss_kind": self.rss_kind}
        if self.device.type == "cuda":
            out["cuda_max_allocated_mib"] = round(
                torch.cuda.max_memory_allocated(self.device) / 2**20, 1
            )
        return out


# ----------------------------------------------------------------------------- results


@dataclass
class BenchResult:
    """One benchmark: raw repeat times plus what they mean."""

    suite: str
    name: str
    size: str  # "paper", "reduced" or "tiny"
    device: str
    unit: str  # what one timed repeat is, e.g. "WM training step"
    times_s: list[float]
    items_per_repeat: float | None = None  # for a rate: e.g. agent steps per repeat
    item_name: str | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cpu_times_s: list[float] | None = None  # process CPU time per repeat

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    def __post_init__(self) -> None:
        # `measure` hands CPU times over inside its memory record
        if self.cpu_times_s is None and "cpu_times_s" in self.memory:
            self.cpu_times_s = self.memory.pop("cpu_times_s")

    def stats(self) -> dict[str, Any]:
        t = sorted(self.times_s)
        med = statistics.median(t)
        if len(t) >= 4:
            q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive")
        else:
            q1, q3 = t[0], t[-1]
        out = {
            "repeats": len(t),
            "median_s": med,
            "min_s": t[0],
            "max_s": t[-1],
            "q1_s": q1,
            "q3_s": q3,
            "rel_spread": (q3 - q1) / med if med > 0 else 0.0,  # IQR / median
        }
        if self.cpu_times_s:
            out["median_cpu_s"] = statistics.median(self.cpu_times_s)
            out["cpu_over_wall"] = out["median_cpu_s"] / med if med > 0 else None
        if self.items_per_repeat:
            out["rate_per_s"] = self.items_per_repeat / med
            out["rate_unit"] = f"{self.item_name}/s"
        return out

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stats"] = self.stats()
        return d


def measure(
    fn: Callable[[], Any],
    *,
    device: torch.device,
    warmup: int = 1,
    repeats: int = 5,
    min_repeats: int = 3,
    budget_s: float | None = None,
) -> tuple[list[float], dict[str, Any]]:
    """Time `fn` (one repeat per call) -> (repeat times in seconds, peak memory).

    The repeat count is `repeats`, lowered to fit `budget_s` (estimated from the last warm-up)
    but not below `min_repeats` (unless `repeats` itself is lower).
    """
    mem = MemoryWindow(device)
    mem.start()
    warm = 0.0
    for _ in range(max(warmup, 0)):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        warm = time.perf_counter() - t0
    n = repeats
    if budget_s is not None and warm > 0:  # fewer repeats to fit the budget, not below min
        n = min(repeats, max(min_repeats, int(budget_s / warm)))
    times, cpu = [], []
    for _ in range(n):
        synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out = mem.stop()
    # CPU seconds of this process (all its threads, not child processes): on a machine shared
    # with other jobs this is close to what the wall time would be on an idle one.
    out["cpu_times_s"] = cpu
    return times, out


# ----------------------------------------------------------------------------- machine


def _git_commit() -> str | None:
    """Short commit of the checkout, with `-dirty` for uncommitted changes (run manifests'
    `git_info`)."""
    info = git_info()
    if info["commit"] is None:
        return None
    return info["commit"][:7] + ("-dirty" if info["dirty"] else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where the figures came from; the load average flags a machine shared with others."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_1_5_15": list(os.getloadavg()),
        "device": str(device),
        "git_commit": _git_commit(),
    }
    try:
        import ale_py
        import gymnasium

        info["gymnasium"] = gymnasium.__version__
        info["ale_py"] = ale_py.__version__
    except ImportError:  # pragma: no cover - both are project dependencies
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["cuda_device"] = props.name
        info["cuda_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda_version"] = torch.version.cuda
    return info


# ----------------------------------------------------------------------------- output


def _fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def _fmt_config(config: dict[str, Any], limit: int = 70) -> str:
    text = ", ".join(f"{k}={v}" for k, v in config.items() if not isinstance(v, (dict, list)))
    return text if len(text) <= limit else text[: limit - 1] + "..."


def print_table(results: list[BenchResult], title: str = "REM benchmarks") -> None:
    """A rich table: one row per benchmark, plus derived figures underneath."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("benchmark", "size", "median", "IQR/med", "n", "CPU", "rate", "peak mem", "config"):
        table.add_column(col, overflow="fold")
    for r in results:
        st = r.stats()
        rate = f"{st['rate_per_s']:.4g} {st['rate_unit']}" if "rate_per_s" in st else ""
        mem = r.memory.get("peak_rss_mib")
        mem_text = f"RSS {mem:.0f} MiB" if mem is not None else ""
        if "cuda_max_allocated_mib" in r.memory:
            mem_text += f", CUDA {r.memory['cuda_max_allocated_mib']:.0f} MiB"
        table.add_row(
            f"{r.suite}/{r.name}",
            r.size,
            _fmt_time(st["median_s"]),
            f"{st['rel_spread']:.1%}",
            str(st["repeats"]),
            _fmt_time(st["median_cpu_s"]) if "median_cpu_s" in st else "",
            rate,
            mem_text,
            _fmt_config(r.config),
        )
    console = Console(width=200)
    console.print(table)
    for r in results:
        if r.derived or r.notes:
            console.print(f"[bold]{r.suite}/{r.name}[/bold] ({r.size})")
            for k, v in r.derived.items():
                console.print(f"  {k}: {v}")
            for note in r.notes:
                console.print(f"  note: {note}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    from rem.utils.atomic import atomic_write_json

    atomic_write_json(path, payload)


def default_json_path(device: torch.device) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(__file__).resolve().parent / "out" / f"bench-{device.type}-{stamp}.json"


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2)
