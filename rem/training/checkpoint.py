"""Crash-safe checkpoints: a kill at any moment leaves the previous checkpoint usable.

Layout under `RUN_DIR/checkpoints/`:

    LATEST.json          {"epoch", "name", "files": {relative path: {"size", "sha256"}}}
    epoch_000050/        state.pt (models, optimisers, epoch, RNG, collector, ...)
                         replay/  (the replay's own incremental format)

A new checkpoint is built in `.tmp/`: unchanged replay files are hard-linked from the previous
checkpoint (the replay rewrites files by rename, so the old checkpoint's inodes are never
modified), then the state is written, every file is hashed and fsynced, `.tmp/` is renamed
to `epoch_N/`, and only then `LATEST.json` is atomically switched. `LATEST.json` is the
commit point; anything else found on resume is debris from a kill and is removed. Sizes and
SHA-256 in `LATEST.json` detect truncated or corrupted files with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rem.training.faults import maybe_kill
from rem.utils.atomic import _fsync_dir, atomic_torch_save, atomic_write_json

FORMAT = 1
LATEST = "LATEST.json"
TMP = ".tmp"
STATE = "state.pt"
REPLAY = "replay"


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used; the message says what is wrong and the fix."""


def _hash_and_sync(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(f.fileno())
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of `src` into `dst` (a cheap copy of the unchanged replay)."""
    for path in _files(src):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:  # file systems without hard links: copy
            shutil.copy2(path, target)


def read_latest(root: str | Path) -> dict[str, Any] | None:
    """The committed checkpoint's record, or None if no checkpoint was ever committed."""
    path = Path(root) / LATEST
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        int(record["epoch"]), str(record["name"]), dict(record["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{path} is corrupt ({err}); the run cannot resume. Delete {Path(root)} to restart "
            "the run from scratch, or restore the folder from a backup"
        ) from err
    return record


def clean_debris(root: str | Path) -> None:
    """Remove what a kill mid-checkpoint left behind (anything but the committed checkpoint)."""
    root = Path(root)
    if not root.is_dir():
        return
    record = read_latest(root)
    keep = {LATEST, record["name"]} if record else {LATEST}
    for entry in root.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def save_checkpoint(
    root: str | Path,
    epoch: int,
    state: dict[str, Any],
    save_replay: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint `epoch` and commit it; returns its folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    previous = read_latest(root)
    name = f"epoch_{epoch:06d}"
    if previous is not None and previous["name"] == name:
        raise CheckpointError(f"checkpoint {name} is already committed in {root}")
    tmp = root / TMP
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    if save_replay is not None:
        if previous is not None and (root / previous["name"] / REPLAY).is_dir():
            _link_tree(root / previous["name"] / REPLAY, tmp / REPLAY)
        save_replay(tmp / REPLAY)
    maybe_kill("checkpoint_mid", epoch)
    atomic_torch_save(tmp / STATE, {"format": FORMAT, "epoch": epoch, **state})
    files = {str(p.relative_to(tmp)): _hash_and_sync(p) for p in _files(tmp)}
    for folder in sorted({p.parent for p in _files(tmp)} | {tmp}):
        _fsync_dir(folder)
    final = root / name
    if final.exists():  # debris of a kill between rename and commit
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    atomic_write_json(
        root / LATEST, {"format": FORMAT, "epoch": epoch, "name": name, "files": files}
    )
    if previous is not None:
        shutil.rmtree(root / previous["name"], ignore_errors=True)
    return final


def verify_checkpoint(root: str | Path) -> dict[str, Any]:
    """Check every file of the committed checkpoint against LATEST.json; returns the record."""
    root = Path(root)
    record = read_latest(root)
    if record is None:
        raise CheckpointError(f"no committed checkpoint in {root} (no {LATEST})")
    folder = root / record["name"]
    fix = (
        f"the run cannot resume from it. Delete {root} to restart the run from scratch, "
        "or restore the folder from a backup"
    )
    for rel, expected in record["files"].items():
        path = folder / rel
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} is missing; {fix}")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(
                f"checkpoint file {path} is truncated or corrupt ({size} bytes, expected "
                f"{expected['size']}); {fix}"
            )
        if _hash_and_sync(path)["sha256"] != expected["sha256"]:
            raise CheckpointError(f"checkpoint file {path} is corrupt (SHA-256 mismatch); {fix}")
    return record


def load_checkpoint(
    root: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[dict, Path]:
    """Verify and load the committed checkpoint -> (state dict, its folder)."""
    root = Path(root)
    record = verify_checkpoint(root)
    folder = root / record["name"]
    try:
        # Our own checksummed file: it holds RNG tuples and optimiser states, not just tensors.
        state = torch.load(folder / STATE, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"cannot read {folder / STATE}: {err}") from err
    if state.get("format") != FORMAT or state.get("epoch") != record["epoch"]:
        raise CheckpointError(
            f"{folder / STATE} does not match {root / LATEST} (format/epoch); delete {root} "
            "to restart the run"
        )
    return state, folder
