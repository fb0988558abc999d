"""One-off conversion of a run folder's checkpoints to the safe state format (format 2).

A checkpoint of format 1 held numpy's RNG state as an ndarray, so only the unpickler that can
run code read it. Reading a file that way is safe only for a folder whose origin the user
trusts (the SHA-256 in LATEST.json sits beside the file: it proves integrity, not origin), so
`rem convert-checkpoint RUN --i-trust-this-folder` is the one place that does it, and only
after that confirmation. Each committed checkpoint's state.pt (the latest and its fallback)
is checked against its record, read, rewritten in plain types, read back with
`weights_only=True`, and LATEST.json is switched to the new sizes and hashes. The original
stays beside it as `state-format1.pt` until LATEST.json is committed, so a kill mid-way
loses nothing (rename it back to state.pt).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from rem.runs.layout import LATEST, STATE, checkpoints_dir
from rem.training.checkpoint import (
    FORMAT,
    CheckpointError,
    UnsafeStateError,
    file_record,
    load_state_file,
    read_latest,
)
from rem.utils.atomic import atomic_write_bytes, atomic_write_json

KEPT = "state-format1.pt"  # the original, until LATEST.json names the converted file
TRUST_FLAG = "--i-trust-this-folder"


def _upgrade(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """A format-1 state -> the same state in plain types (format 2)."""
    if state.get("format") != 1:
        raise CheckpointError(
            f"{path} has format {state.get('format')!r}; only format 1 is converted"
        )
    name, keys, pos, has_gauss, cached = state["rng"]["numpy"]
    numpy_state = {
        "bit_generator": str(name),
        "keys": keys.astype("<u4").tobytes(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }
    return {**state, "format": FORMAT, "rng": {**state["rng"], "numpy": numpy_state}}


def _converted_bytes(path: Path) -> bytes:
    """Read `path` with the unsafe loader (the user trusts the folder), upgrade it, and check
    that the result loads with `weights_only=True` -> the new file's bytes."""
    # The one unsafe load in rem, reached only after --i-trust-this-folder.
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a rem state file (a {type(state).__name__})")
    buffer = io.BytesIO()
    torch.save(_upgrade(state, path), buffer)
    try:
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    except Exception as err:  # noqa: BLE001 - report what still needs code
        raise CheckpointError(f"{path} still needs code to load after conversion: {err}") from err
    return buffer.getvalue()


def _needs_conversion(root: Path, record: dict[str, Any]) -> bool:
    path = root / record["name"] / STATE
    expected = record["files"][STATE]
    actual = file_record(path) if path.is_file() else None
    if actual != {"size": expected["size"], "sha256": expected["sha256"]}:
        raise CheckpointError(
            f"{path} does not match its record in {root / LATEST} (missing, truncated or "
            f"changed); it is not converted. Restore the folder from its source"
        )
    try:
        load_state_file(path)
    except UnsafeStateError:
        return True
    return False


def convert_run(run_dir: str | Path, trust: bool) -> list[str]:
    """Convert the committed checkpoints of `run_dir` -> one line per checkpoint saying what
    was done. Without `trust`, nothing is read unsafely: CheckpointError names the flag."""
    root = checkpoints_dir(run_dir)
    record = read_latest(root)
    if record is None:
        raise CheckpointError(f"no committed checkpoint in {root} (no {LATEST})")
    records = [r for r in (record, record.get("previous")) if r is not None]
    todo = [r for r in records if _needs_conversion(root, r)]
    if todo and not trust:
        raise CheckpointError(
            f"converting {run_dir} means loading its state files with an unpickler that runs "
            f"any code they hold; do it only for a folder from a source you trust: "
            f"`rem convert-checkpoint {run_dir} {TRUST_FLAG}`"
        )
    lines = [f"epoch {r['epoch']}: already in the safe format" for r in records if r not in todo]
    for rec in todo:
        path = root / rec["name"] / STATE
        data = _converted_bytes(path)
        kept = path.with_name(KEPT)
        kept.unlink(missing_ok=True)
        os.link(path, kept)
        atomic_write_bytes(path, data)
        rec["files"][STATE] = file_record(path)
        lines.append(f"epoch {rec['epoch']}: converted {path} to the safe format")
    if todo:
        atomic_write_json(root / LATEST, {**record, "format": FORMAT})
        for rec in todo:
            (root / rec["name"] / KEPT).unlink()
    return lines
