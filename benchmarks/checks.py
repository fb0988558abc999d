"""Hot-path hygiene: host-device synchronisations in a training step, Python loops over tokens
or heads.

Two detectors, both reporting file:line in the `rem` package:
- Runtime (any device): a `TorchFunctionMode` that records every torch call which forces a
  host-device synchronisation when its tensor lives on a GPU: `.item()`, `.tolist()`,
  `.numpy()`, `bool()/float()/int()` of a tensor (this includes `if tensor:` and
  `torch.distributions` argument validation), boolean-mask indexing, `nonzero`, `unique`,
  `masked_select`, `.cpu()` / `.to("cpu")`. On CPU nothing actually synchronises, so this tells
  what *would* synchronise on CUDA. Calls made inside torch itself (for instance AdamW's step
  counters, which live on the CPU) are listed separately.
- On CUDA additionally `torch.cuda.set_sync_debug_mode("warn")`, which counts the syncs the
  CUDA runtime itself sees.
- Static: an AST scan of the hot-path modules for sync-prone calls and for `for` loops, each
  loop tagged by what it iterates over (layers and time steps are inherent; tokens and heads
  are not allowed in a hot path).
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

REM_ROOT = Path(__file__).resolve().parents[1] / "rem"

# Tensor methods / torch functions that read device memory on the host.
_SYNC_METHODS = {
    "item",
    "tolist",
    "numpy",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "nonzero",
    "unique",
    "unique_consecutive",
    "masked_select",
    "cpu",
    "__repr__",
    "__format__",
}


def _func_name(func: Any) -> str:
    return getattr(func, "__name__", None) or str(func)


def _is_bool_mask_index(func: Any, args: tuple) -> bool:
    if _func_name(func) not in {"__getitem__", "__setitem__"} or len(args) < 2:
        return False
    idx = args[1] if isinstance(args[1], tuple) else (args[1],)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in idx)


def _is_to_cpu(func: Any, args: tuple, kwargs: dict) -> bool:
    """`.to(cpu)` of a tensor that is not on the CPU (a generic `.to(x.device)` on a CPU run
    is not a host copy; explicit `.cpu()` calls are always recorded)."""
    if _func_name(func) != "to" or not args or not isinstance(args[0], torch.Tensor):
        return False
    if args[0].device.type == "cpu":
        return False
    targets = list(args[1:]) + list(kwargs.values())
    return any(
        (isinstance(t, str) and t == "cpu") or (isinstance(t, torch.device) and t.type == "cpu")
        for t in targets
    )


_TORCH_SHIMS = ("overrides.py", "_tensor.py", "functional.py", "_jit_internal.py")


def _caller() -> str:
    """The innermost stack frame inside `rem/` (else the innermost outside torch).

    A call made by torch's own code (e.g. AdamW reading its CPU step counters) is labelled
    "<inside torch>" even when `rem` code called into torch: it is not ours to remove.
    """
    frame = sys._getframe(2)
    # torch's dispatch shims (Python-level Tensor methods, torch.functional) are not callers
    while frame is not None and any(
        frame.f_code.co_filename.endswith(f"/torch/{shim}") for shim in _TORCH_SHIMS
    ):
        frame = frame.f_back
    if frame is not None and "/torch/" in frame.f_code.co_filename:
        where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
        return f"<inside torch> {where} ({frame.f_code.co_name})"
    first_outside_torch = None
    rem = str(REM_ROOT)
    while frame is not None:
        fname = frame.f_code.co_filename
        if fname.startswith(rem):
            return (
                f"rem/{Path(fname).relative_to(REM_ROOT)}:{frame.f_lineno} ({frame.f_code.co_name})"
            )
        if first_outside_torch is None and "/torch/" not in fname and "benchmarks" not in fname:
            first_outside_torch = f"{fname}:{frame.f_lineno}"
        frame = frame.f_back
    return f"<inside torch> {first_outside_torch or ''}".strip()


class SyncRecorder(TorchFunctionMode):
    """Records the torch calls that would synchronise a CUDA device."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: Counter[tuple[str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _func_name(func)
        if (
            name in _SYNC_METHODS
            or _is_bool_mask_index(func, args)
            or _is_to_cpu(func, args, kwargs)
        ):
            label = "bool-mask indexing" if name in {"__getitem__", "__setitem__"} else name
            self.hits[(label, _caller())] += 1
        return func(*args, **kwargs)

    def report(self) -> dict[str, Any]:
        in_rem = {f"{k[1]}: {k[0]}": n for k, n in self.hits.items() if k[1].startswith("rem/")}
        other = {f"{k[1]}: {k[0]}": n for k, n in self.hits.items() if not k[1].startswith("rem/")}
        return {
            "would_sync_on_cuda_in_rem": dict(sorted(in_rem.items())),
            "inside_torch_or_elsewhere": dict(sorted(other.items())),
            "total_in_rem": sum(in_rem.values()),
        }


def record_syncs(step: Callable[[], Any], device: torch.device) -> dict[str, Any]:
    """Run `step` once under the recorder (and CUDA's sync debug mode on a GPU)."""
    out: dict[str, Any] = {}
    rec = SyncRecorder()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught, rec:
                warnings.simplefilter("always")
                step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        cuda_syncs = [
            str(w.message).splitlines()[0] for w in caught if "synchron" in str(w.message)
        ]
        out["cuda_sync_debug_warnings"] = len(cuda_syncs)
        out["cuda_sync_debug_examples"] = sorted(set(cuda_syncs))[:10]
    else:
        with rec:
            step()
        out["cuda_sync_debug_warnings"] = "n/a (no CUDA device; see the recorder)"
    out.update(rec.report())
    return out


# ----------------------------------------------------------------------------- static scan

HOT_PATHS = [
    "models/retention.py",
    "models/retnet.py",
    "models/world_model.py",
    "models/world_model_nopop.py",
    "models/tokenizer.py",
    "models/lpips.py",
    "models/vgg.py",
    "models/actor_critic.py",
    "models/pixel_actor_critic.py",
    "models/returns.py",
    "models/agent.py",
    "models/imagination.py",
]

_SYNC_ATTRS = {"item", "tolist", "numpy", "cpu", "synchronize", "nonzero", "unique"}
_BAD_LOOP_WORDS = ("head", "token", "vocab")
_OK_LOOP_WORDS = ("layer", "block", "chunk", "step", "horizon", "burn", "time", "group", "stage")


def _loop_kind(text: str) -> str:
    low = text.lower()
    if any(w in low for w in _BAD_LOOP_WORDS):
        return "SUSPECT: tokens/heads"
    if any(w in low for w in _OK_LOOP_WORDS):
        return "inherent (layers/blocks/chunks/time)"
    return "check"


def static_scan(paths: list[str] | None = None) -> dict[str, Any]:
    """AST scan of the hot-path modules that exist: sync-prone calls and `for` loops."""
    found: dict[str, Any] = {"scanned": [], "missing": [], "sync_calls": [], "loops": []}
    for rel in paths or HOT_PATHS:
        path = REM_ROOT / rel
        if not path.is_file():
            found["missing"].append(f"rem/{rel}")
            continue
        found["scanned"].append(f"rem/{rel}")
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in _SYNC_ATTRS:
                    found["sync_calls"].append(
                        f"rem/{rel}:{node.lineno}: {ast.get_source_segment(source, node)}"
                    )
            elif isinstance(node, (ast.For, ast.comprehension)):
                target = ast.get_source_segment(source, node.target) or "?"
                it = ast.get_source_segment(source, node.iter) or "?"
                line = getattr(node, "lineno", getattr(node.iter, "lineno", 0))
                text = f"for {target} in {it}"
                found["loops"].append(f"rem/{rel}:{line}: {text}  [{_loop_kind(text)}]")
    found["suspect_loops"] = [ln for ln in found["loops"] if "SUSPECT" in ln]
    return found
