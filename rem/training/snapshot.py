"""Kept checkpoints (`run.snapshot_every`): the agent of epoch N stays readable after the
trainer has moved on (it keeps only its two newest checkpoints).

    RUN_DIR/snapshots/epoch_000030/manifest.json            the run's manifest
    RUN_DIR/snapshots/epoch_000030/checkpoints/LATEST.json  a record naming only state.pt
    RUN_DIR/snapshots/epoch_000030/checkpoints/epoch_000030/state.pt   hard link

A snapshot is itself a run folder whose last checkpoint is epoch N, so every command that
loads a run's agent (`rem wm-eval SNAPSHOT`, rem.training.restore) reads it unchanged; the
replay is left out (loading an agent never reads it). It is built in a hidden folder and
renamed into place, so a kill leaves either the whole snapshot or none.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rem.runs.layout import LATEST, MANIFEST, SNAPSHOTS, STATE, checkpoints_dir
from rem.training.checkpoint import FORMAT, read_latest
from rem.utils.atomic import atomic_write_json, fsync_dir


def snapshot_path(run_path: str | Path, epoch: int) -> Path:
    return Path(run_path) / SNAPSHOTS / f"epoch_{epoch:06d}"


def save_snapshot(run_path: str | Path, epoch: int) -> Path:
    """Keep the committed checkpoint of `epoch` (it must be the latest) as a snapshot."""
    run_path = Path(run_path)
    record = read_latest(checkpoints_dir(run_path))
    if record is None or record["epoch"] != epoch:
        raise ValueError(f"no committed checkpoint of epoch {epoch} in {run_path}")
    final = snapshot_path(run_path, epoch)
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    folder = checkpoints_dir(tmp) / record["name"]
    folder.mkdir(parents=True)
    source = checkpoints_dir(run_path) / record["name"] / STATE
    try:
        os.link(source, folder / STATE)
    except OSError:  # file systems without hard links: copy
        shutil.copy2(source, folder / STATE)
    shutil.copy2(run_path / MANIFEST, tmp / MANIFEST)
    files = {STATE: record["files"][STATE]}
    atomic_write_json(
        checkpoints_dir(tmp) / LATEST,
        {
            "format": FORMAT,
            "epoch": epoch,
            "name": record["name"],
            "files": files,
            "previous": None,
        },
    )
    if final.exists():  # a resumed run repeated this epoch
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(final.parent)
    return final
