"""The run folder contract and the run manifest.

    RUN_DIR/manifest.json   identity (game, variant, seed, resolved config) + provenance
    RUN_DIR/metrics.jsonl   one JSON line per epoch (the source of truth for curves)
    RUN_DIR/checkpoints/    see rem.training.checkpoint
    RUN_DIR/media/          reconstructions/*.png, episodes/{train,test,imagination}/*.pt
    RUN_DIR/scores.json     final evaluation
    RUN_DIR/COMPLETED       written last: the run is complete

`rem train` on an existing folder resumes it if its identity matches, does nothing if it is
complete, and refuses otherwise (naming the keys that differ).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rem.utils.atomic import atomic_write_json, atomic_write_text

# Keys that change only logging, not what is computed: a resume may change them.
NON_IDENTITY_KEYS = {"run.tensorboard", "run.wandb"}
PACKAGES = ("torch", "numpy", "gymnasium", "ale-py", "einops", "pyyaml", "tqdm", "rem")


class RunDirError(RuntimeError):
    """The run folder cannot be used for this run; the message says why and what to do."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def git_info() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = self.path / "manifest.json"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.media = self.path / "media"
        self.scores = self.path / "scores.json"
        self.completed = self.path / "COMPLETED"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the folder by one `rem train` process (released when it dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise RunDirError(
                    f"another `rem train` process is using {self.path}; wait for it to finish "
                    "or stop it first"
                ) from err
            yield

    def is_complete(self) -> bool:
        return self.completed.exists()

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest.exists():
            return None
        try:
            return json.loads(self.manifest.read_text())
        except ValueError as err:
            raise RunDirError(
                f"{self.manifest} is not valid JSON ({err}); delete {self.path} to restart the run"
            ) from err

    def check_identity(self, identity: dict[str, Any]) -> None:
        """Refuse a folder written by a run with another game/variant/seed/config."""
        manifest = self.read_manifest()
        if manifest is None:
            if self.checkpoints.exists() or self.metrics.exists():
                raise RunDirError(
                    f"{self.path} holds run files but no manifest.json; it was not written "
                    "by `rem train`. Choose another --run-dir or delete this folder"
                )
            return
        old = _flatten({k: manifest.get(k) for k in identity})
        new = _flatten(identity)
        diffs = [
            f"{key}: {old.get(key)!r} (folder) vs {new.get(key)!r} (now)"
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key) and key.removeprefix("config.") not in NON_IDENTITY_KEYS
        ]
        if diffs:
            raise RunDirError(
                f"{self.path} belongs to a different run; refusing to resume it. Differences:\n  "
                + "\n  ".join(diffs)
                + "\nUse another --run-dir, or pass the same game/seed/variant/preset/overrides."
            )

    def start_session(
        self, identity: dict[str, Any], extra: dict[str, Any], from_epoch: int
    ) -> None:
        """Create or update the manifest for a new (or resumed) process."""
        manifest = self.read_manifest() or {
            **identity,
            **extra,
            "git": git_info(),
            "packages": package_versions(),
            "started_at": now(),
            "ended_at": None,
            "status": "running",
            "sessions": [],
        }
        manifest["sessions"].append(
            {
                "started_at": now(),
                "from_epoch": from_epoch,
                "argv": sys.argv,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "python": platform.python_version(),
                "git": git_info(),
                **{
                    k: v
                    for k, v in extra.items()
                    if k in ("device", "device_name", "torch_threads")
                },
            }
        )
        manifest["status"] = "running"
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.manifest, manifest)

    def finish(self, scores: dict[str, Any]) -> None:
        """scores.json, the manifest's end time, then the COMPLETED marker (last)."""
        atomic_write_json(self.scores, scores)
        manifest = self.read_manifest() or {}
        manifest["ended_at"] = now()
        manifest["status"] = "completed"
        if manifest.get("sessions"):
            manifest["sessions"][-1]["ended_at"] = manifest["ended_at"]
        atomic_write_json(self.manifest, manifest)
        atomic_write_text(self.completed, f"completed {manifest['ended_at']}\n")
