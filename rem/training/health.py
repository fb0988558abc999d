"""Health alarms of a training run: a non-finite loss or gradient stops the run at once.

The check costs no host-device sync inside a step: each phase already reads all its metrics
and grad norms in one transfer at its end (`rem.training.step.summarise_phase`); a NaN or
inf in any step propagates into those means and maxima, so `check_phase` looks at the
phase's summary, and only when it is bad reads the per-step values again to name the first
bad step. The run then stops before the epoch's checkpoint, so the last committed checkpoint
is the last healthy one.

A stop leaves three traces: a `{"epoch", "failed": true, "error", ...}` line in
metrics.jsonl, `status: failed` and `error` in manifest.json, and one entry in
`RUN_DIR/failures.json` (kept across attempts: a retry resumes from the checkpoint, the
metrics line is truncated away, the record stays). Every later attempt logs the earlier
stops, so a deterministic failure that a workflow retries says so in each attempt's log.

Test hook: `REM_TEST_NAN_AT=COMPONENT:EPOCH[:STEP]` (e.g. `world_model:4:2`; STEP 1-based,
default 1) multiplies that training step's loss by NaN, as a diverging model would.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rem.runs.layout import FAILURES
from rem.utils.atomic import atomic_write_json

NAN_VAR = "REM_TEST_NAN_AT"


class NonFiniteError(RuntimeError):
    """A training phase produced a non-finite loss or gradient; the run must stop."""

    def __init__(self, message: str, *, component: str, epoch: int, step: int, what: str):
        super().__init__(message)
        self.component, self.epoch, self.step, self.what = component, epoch, step, what


def _first_bad_step(rows: list[dict[str, torch.Tensor]], norms: list[torch.Tensor]) -> int:
    """1-based index of the first step with a non-finite metric or grad norm (a host read:
    only on the failure path)."""
    per_step = torch.stack(
        [
            torch.stack([v.float() for v in row.values()] + ([norms[i].float()] if norms else []))
            for i, row in enumerate(rows)
        ]
    )
    bad = (~torch.isfinite(per_step)).any(dim=1)
    return int(bad.nonzero()[0, 0]) + 1 if bool(bad.any()) else len(rows)


def check_phase(
    component: str,
    epoch: int,
    summary: dict[str, float],
    rows: list[dict[str, torch.Tensor]],
    norms: list[torch.Tensor],
) -> None:
    """Raise NonFiniteError if a training phase's summary holds a non-finite value.

    summary: `summarise_phase` output (host floats); rows / norms: the phase's per-step
    device tensors, read again only to name the first bad step.
    """
    bad = {k: v for k, v in summary.items() if v is None or not math.isfinite(v)}
    if not bad:
        return
    step = _first_bad_step(rows, norms)
    row = {k: float(v) for k, v in rows[step - 1].items()}
    loss = row.get("loss", float("nan"))
    norm = float(norms[step - 1]) if norms else float("nan")
    what = "loss" if not math.isfinite(loss) else "gradient"
    raise NonFiniteError(
        f"non-finite {component} {what} at epoch {epoch}, step {step}/{len(rows)} (loss "
        f"{loss:.6g}, grad norm before clipping {norm:.6g}). Stopped before this epoch's "
        "checkpoint: the last committed checkpoint is intact. A resume repeats the same steps: "
        "check the learning rate, run.bf16 and the game's data first",
        component=component,
        epoch=epoch,
        step=step,
        what=what,
    )


def read_failures(run_dir: str | Path) -> list[dict[str, Any]]:
    """The failure records of a run folder ([] if none or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / FAILURES).read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def record_failure(
    run_dir: str | Path, err: NonFiniteError, *, resumed_from: int, git_commit: str | None
) -> dict[str, Any]:
    """Append this stop to RUN_DIR/failures.json (atomic) and return the record."""
    import datetime as dt

    record = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "kind": f"non-finite {err.what}",
        "component": err.component,
        "epoch": err.epoch,
        "step": err.step,
        "resumed_from_epoch": resumed_from,
        "error": str(err),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
        "git_commit": git_commit,
    }
    failures = read_failures(run_dir) + [record]
    atomic_write_json(Path(run_dir) / FAILURES, failures)
    return record


def stop_on_failure(run: Any, logger: Any, err: NonFiniteError, *, resumed_from: int) -> None:
    """Leave the traces of a stop: metrics line, manifest status/error, failures.json.

    run: the `RunDir`; logger: the run's `MetricsLogger`. The checkpoints are not touched.
    """
    manifest = run.read_manifest() or {}
    commit = (manifest.get("git") or {}).get("commit")
    record = record_failure(run.path, err, resumed_from=resumed_from, git_commit=commit)
    logger.log(
        {
            "epoch": err.epoch,
            "failed": True,
            "error": str(err),
            "failure/component": err.component,
            "failure/step": err.step,
        }
    )
    manifest.update(status="failed", error=str(err), failed_at=record["at"])
    if manifest.get("sessions"):
        manifest["sessions"][-1]["ended_at"] = record["at"]
        manifest["sessions"][-1]["error"] = str(err)
    atomic_write_json(run.manifest, manifest)


def previous_failures_note(run_dir: str | Path) -> str | None:
    """One log line about earlier stops of this run (None if there were none)."""
    failures = read_failures(run_dir)
    if not failures:
        return None
    parts = [
        f"{f.get('kind', 'failure')} in {f.get('component')} at epoch {f.get('epoch')} "
        f"step {f.get('step')} ({f.get('at')}, resumed from epoch {f.get('resumed_from_epoch')})"
        for f in failures
    ]
    epochs = {f.get("epoch") for f in failures}
    same = (
        f"; the same epoch {epochs.pop()} each time: a deterministic failure repeats, so this "
        "attempt will likely stop there again"
        if len(failures) > 1 and len(epochs) == 1
        else ""
    )
    return f"WARNING: this run stopped {len(failures)} time(s) before: " + "; ".join(parts) + same


def training_seconds(records: list[dict[str, Any]]) -> float:
    """Training time of the kept epochs: the last `time/elapsed`, else the sum of epoch times."""
    for record in reversed(records):
        if isinstance(record.get("time/elapsed"), (int, float)) and not record.get("final"):
            return float(record["time/elapsed"])
    return float(sum(r.get("time/epoch") or 0.0 for r in records if not r.get("final")))


def nan_hook(component: str, epoch: int, loss_fn: Callable) -> Callable:
    """Under REM_TEST_NAN_AT, this phase's loss function with one step's loss made NaN.

    Called once per training phase; returns `loss_fn` itself when the variable is unset.
    """
    spec = os.environ.get(NAN_VAR)
    if not spec:
        return loss_fn
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(
            f"{NAN_VAR}={spec!r}: expected COMPONENT:EPOCH[:STEP], e.g. world_model:4:2"
        )
    at_step = int(parts[2]) if len(parts) == 3 else 1
    if (parts[0], int(parts[1])) != (component, epoch):
        return loss_fn
    calls = [0]

    def poisoned(batch):
        calls[0] += 1
        loss, metrics = loss_fn(batch)
        if calls[0] == at_step:
            loss = loss * float("nan")
            metrics = {**metrics, "loss": metrics["loss"] * float("nan")}
        return loss, metrics

    return poisoned
