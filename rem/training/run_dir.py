"""Writing a run folder: its lock, the run manifest, the final scores and the COMPLETED marker.

The file names and the layout are rem.runs.layout's (the contract every reader shares):

    RUN_DIR/manifest.json   identity (game, variant, seed, resolved config) + provenance
    RUN_DIR/metrics.jsonl   one JSON line per epoch (the source of truth for curves)
    RUN_DIR/checkpoints/    see rem.training.checkpoint
    RUN_DIR/media/          reconstructions/*.png, episodes/{train,test,imagination}/*.pt
    RUN_DIR/scores.json     final evaluation
    RUN_DIR/COMPLETED       written last: the run is complete

`rem train` on an existing folder resumes it if its identity matches, does nothing if it is
finished, and refuses otherwise (naming the keys that differ). A run is *finished* when its
own final state says so (`finished_state`): the committed checkpoint is the last epoch's and
its state.pt is intact, scores.json is the final evaluation of this run, metrics.jsonl has
its final line. COMPLETED alone proves nothing (a workflow may delete it), and a missing
COMPLETED on a finished run is simply written again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rem.config import RETIRED_KEYS, Config
from rem.runs import layout
from rem.runs.files import ManifestError, read_manifest
from rem.utils.atomic import atomic_write_json, atomic_write_text
from rem.utils.faults import maybe_kill
from rem.utils.paths import repo_root

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


def _same_setting(key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the folder's value of a flattened identity key (`config.run.epochs`) and the
    new one describe the same run. A key added to the config since the folder was written
    counts as its default (a new key defaults to the old behaviour); a retired key counts
    as its only value (rem.config.RETIRED_KEYS)."""
    bare = key.removeprefix("config.")
    if key not in old and key.startswith("config."):
        return new[key] == _flatten(Config().to_dict()).get(bare)
    if key not in new and bare in RETIRED_KEYS:
        return old[key] == RETIRED_KEYS[bare]
    return old.get(key) == new.get(key) or bare in NON_IDENTITY_KEYS


def git_info() -> dict[str, Any]:
    root = repo_root()
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
        self.manifest = self.path / layout.MANIFEST
        self.metrics = self.path / layout.METRICS
        self.checkpoints = self.path / layout.CHECKPOINTS
        self.media = self.path / layout.MEDIA
        self.scores = self.path / layout.SCORES
        self.completed = self.path / layout.COMPLETED

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the folder by one `rem train` process (released when it dies).

        The holder writes who it is into `.lock`, so a second process refuses naming it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        # O_RDWR without truncation: opening must not erase the holder's note before flock.
        fd = os.open(self.path / layout.LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        with os.fdopen(fd, "r+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                holder = handle.read().strip() or "a process that has not said who it is yet"
                raise RunDirError(
                    f"another `rem train` process is using {self.path}: {holder}. Two trainers "
                    "never write one run folder: wait for it to finish, or stop it (kill the "
                    "pid above, on that host), then run this command again"
                ) from err
            except OSError as err:  # e.g. a shared file system mounted without flock support
                raise RunDirError(
                    f"cannot lock {self.path / layout.LOCK} ({err}): its file system does not "
                    "support flock, so two trainers could write this run folder at once. Use a "
                    "run folder on a file system with flock (NFSv4; Lustre mounted with -o flock)"
                ) from err
            handle.truncate(0)
            handle.write(
                f"pid {os.getpid()} on host {socket.gethostname()}, since {now()}: "
                + " ".join(sys.argv)
                + "\n"
            )
            handle.flush()
            yield

    def is_complete(self) -> bool:
        """The COMPLETED marker exists (see `finished_state` for what it should mean)."""
        return self.completed.exists()

    def finished_state(self, identity: dict[str, Any]) -> str | None:
        """None if the folder holds this run finished (from its own files), else why not.

        Checks: the manifest is this run's; the committed checkpoint is epoch
        `run.epochs` and its state.pt matches its size and SHA-256; scores.json is this
        run's final evaluation (game, variant, seed, epochs, `evaluation.final_episodes`
        returns); metrics.jsonl has the final evaluation's line. Cheap: no replay is read.
        """
        from rem.training.checkpoint import CheckpointError, verify_state_file

        cfg = identity["config"]
        epochs, episodes = cfg["run"]["epochs"], cfg["evaluation"]["final_episodes"]
        manifest = self.read_manifest()
        if manifest is None:
            return "no manifest.json"
        if not self.scores.is_file():
            return "no scores.json"
        try:
            record = verify_state_file(self.checkpoints)
        except CheckpointError as err:
            return f"final checkpoint not usable ({err})"
        if record["epoch"] != epochs:
            return f"the last checkpoint is epoch {record['epoch']} of {epochs}"
        try:
            scores = json.loads(self.scores.read_text())
            facts = (scores["game"], scores["variant"], scores["seed"], scores["epochs"])
            count = (scores["episodes"], len(scores["returns"]))
        except (ValueError, KeyError, TypeError) as err:
            return f"{self.scores} is not a final evaluation ({err!r})"
        if facts != (identity["game"], identity["variant"], identity["seed"], epochs):
            return f"{self.scores} belongs to another run {facts}"
        if count != (episodes, episodes):
            return f"{self.scores} holds {count[1]} returns, the config asks for {episodes}"
        from rem.runs.files import read_metrics

        if not any(r.get("final") for r in read_metrics(self.metrics)):
            return f"{self.metrics} has no final-evaluation line"
        return None

    def mark_completed(self) -> None:
        """A finished run (see `finished_state`) whose COMPLETED marker or manifest status is
        missing, e.g. a kill inside `finish` or a workflow that deleted the marker: write them
        again. Nothing is retrained."""
        manifest = self.read_manifest() or {}
        if manifest.get("status") != "completed" or not manifest.get("ended_at"):
            manifest["ended_at"] = manifest.get("ended_at") or now()
            manifest["status"] = "completed"
            atomic_write_json(self.manifest, manifest)
        if not self.completed.exists():
            atomic_write_text(self.completed, f"completed {manifest['ended_at']}\n")

    def check_fresh_start(self, first_checkpoint: int) -> None:
        """Refuse to start from epoch 1 over a run that had committed a checkpoint: its
        metrics show an epoch after `first_checkpoint`, so checkpoints were lost."""
        from rem.runs.files import read_metrics

        done = max((int(r.get("epoch", 0)) for r in read_metrics(self.metrics)), default=0)
        if done > first_checkpoint:
            raise RunDirError(
                f"{self.metrics} records epoch {done}, so this run committed checkpoints, but "
                f"{self.checkpoints} holds none: they were deleted or lost. Refusing to start "
                "over silently. Restore the checkpoints from a backup, or train from scratch "
                "with --retrain (or delete the run folder)"
            )

    # what --retrain deletes: everything a run writes (the lock stays)
    RUN_FILES = (
        layout.COMPLETED,
        layout.SCORES,
        layout.CHECKPOINTS,
        layout.METRICS,
        layout.MEDIA,
        "tensorboard",
        "wandb",
        layout.MANIFEST,
    )

    def wipe(self) -> list[str]:
        """Delete the run's files (COMPLETED first) for a deliberate retrain; returns names."""
        removed = []
        for name in self.RUN_FILES:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(name)
        return removed

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return read_manifest(self.path)
        except ManifestError as err:
            raise RunDirError(
                f"{self.manifest} is not valid JSON ({err.__cause__ or err}); delete {self.path} "
                "to restart the run"
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
            if not _same_setting(key, old, new)
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
        maybe_kill("finish_scores")
        manifest = self.read_manifest() or {}
        manifest["ended_at"] = now()
        manifest["status"] = "completed"
        if manifest.get("sessions"):
            manifest["sessions"][-1]["ended_at"] = manifest["ended_at"]
        atomic_write_json(self.manifest, manifest)
        maybe_kill("finish_manifest")
        atomic_write_text(self.completed, f"completed {manifest['ended_at']}\n")
