"""Crash-safe checkpoints: a kill at any moment leaves a committed, verified checkpoint.

Layout under `RUN_DIR/checkpoints/`:

    LATEST.json          {"epoch", "name", "files": {relative path: {"size", "sha256"}},
                          "previous": the record of the checkpoint before it, or null}
    epoch_000050/        state.pt (models, optimisers, epoch, RNG, collector, ...)
                         replay/  (the replay's own incremental format)
    epoch_000048/        the previous committed checkpoint, kept as a fallback

A new checkpoint is built in `.tmp/`: unchanged replay files are hard-linked from the previous
checkpoint (the replay writes a new name for every changed episode and replaces files by
rename, so the old checkpoint's inodes are never modified), then the state is written, every
file is hashed and fsynced, and the checkpoint is *verified*: every replay file named by the
replay's manifest holds the recorded number of steps (header reads) and state.pt is a complete
archive. Only then is `.tmp/` renamed to `epoch_N/` and `LATEST.json` atomically switched
(the commit point); the checkpoint before the previous one is deleted after the commit. A
checkpoint that fails verification is never committed (CheckpointError; the previous one
stays committed).

Loading verifies again (sizes, SHA-256, replay lengths) and reads state.pt with
`torch.load(weights_only=True)` only: the hashes sit in the same folder, so they prove
integrity, not origin, and a shared run folder must never run code. state.pt therefore holds
plain types (containers, numbers, strings, bytes, tensors); a file that needs more (a crafted
pickle, or a checkpoint of format 1, whose numpy RNG state was an ndarray) is refused with
one line naming `rem convert-checkpoint` (rem/training/convert.py). If the latest checkpoint is unusable,
`load_checkpoint(..., fallback=True)` resumes from the previous one, says so with the number
of epochs lost, and keeps the bad one as `corrupt-epoch_N/` for inspection. Anything else
found on resume is debris from a kill and is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rem.data.replay import MANIFEST as REPLAY_MANIFEST
from rem.data.replay import ReplayError, verify_saved
from rem.runs.layout import LATEST, REPLAY, STATE, run_of_state
from rem.utils.atomic import atomic_torch_save, atomic_write_json, fsync_dir
from rem.utils.disk_errors import is_refusal
from rem.utils.faults import maybe_kill

FORMAT = 2  # 2: state.pt loads with torch.load(weights_only=True); 1: it needed pickle
TMP = ".tmp"
CORRUPT = "corrupt-"  # prefix of a checkpoint set aside after it failed verification on load


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used; the message says what is wrong and the fix."""


def _hash_and_sync(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(f.fileno())
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def file_record(path: Path) -> dict[str, Any]:
    """{"size", "sha256"} of a file (fsynced first), as LATEST.json records it."""
    return _hash_and_sync(path)


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


def _fix(root: Path) -> str:
    return (
        f"Delete {root.parent} (or run `rem train` with --retrain) to restart the run from "
        "scratch, or restore the folder from a backup"
    )


def read_latest(root: str | Path) -> dict[str, Any] | None:
    """The committed checkpoint's record, or None if no checkpoint was ever committed."""
    path = Path(root) / LATEST
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        for rec in (record, record.get("previous")):
            if rec is not None:
                int(rec["epoch"]), str(rec["name"]), dict(rec["files"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"{path} is corrupt ({err}); the run cannot resume. {_fix(Path(root))}"
        ) from err
    return record


def clean_debris(root: str | Path) -> None:
    """Remove what a kill mid-checkpoint left behind: anything but the committed checkpoint,
    its fallback and checkpoints set aside as corrupt."""
    root = Path(root)
    if not root.is_dir():
        return
    record = read_latest(root)
    keep = {LATEST}
    if record is not None:
        keep |= {record["name"]} | (
            {record["previous"]["name"]} if record.get("previous") else set()
        )
    for entry in root.iterdir():
        if entry.name not in keep and not entry.name.startswith(CORRUPT):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _check_folder(
    folder: Path, files: dict[str, Any], *, hashes: bool, replay: bool = True
) -> None:
    """Raise CheckpointError (the problem only) unless `folder` holds exactly what `files`
    records (sizes; SHA-256 when `hashes`), a replay matching its manifest and a complete
    state.pt archive. `replay=False` checks state.pt alone (all that loading an agent needs)."""
    if STATE not in files:
        raise CheckpointError(f"{folder} has no {STATE} in its record")
    if not replay:
        files = {STATE: files[STATE]}
    for rel, expected in files.items():
        path = folder / rel
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} is missing")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(
                f"checkpoint file {path} is truncated or corrupt ({size} bytes, expected "
                f"{expected['size']})"
            )
        if hashes and _hash_and_sync(path)["sha256"] != expected["sha256"]:
            raise CheckpointError(f"checkpoint file {path} is corrupt (SHA-256 mismatch)")
    if replay and (folder / REPLAY / REPLAY_MANIFEST).is_file():
        try:
            verify_saved(folder / REPLAY)
        except (ReplayError, FileNotFoundError) as err:
            raise CheckpointError(f"the replay of {folder} is inconsistent: {err}") from err
    try:
        with zipfile.ZipFile(folder / STATE) as archive:  # torch.save writes a zip archive
            archive.infolist()
    except (OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{folder / STATE} is not a complete archive ({err})") from err


def save_checkpoint(
    root: str | Path,
    epoch: int,
    state: dict[str, Any],
    save_replay: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint `epoch`, verify it, commit it; returns its folder.

    A write the file system refuses (full, read-only, no permission) raises its OSError
    after the uncommitted files are removed (on a full disk they hold the space a retry
    needs); the committed checkpoint is untouched either way."""
    root = Path(root)
    try:
        return _save_checkpoint(root, epoch, state, save_replay)
    except OSError as err:
        if is_refusal(err):
            _remove_uncommitted(root, f"epoch_{epoch:06d}")
        raise


def _remove_uncommitted(root: Path, name: str) -> None:
    """Delete `.tmp/` and folder `name` unless LATEST.json names it (best effort: the file
    system may be read-only; a resume removes them then)."""
    shutil.rmtree(root / TMP, ignore_errors=True)
    try:
        record = read_latest(root)
    except CheckpointError:
        return
    if record is None or record["name"] != name:
        shutil.rmtree(root / name, ignore_errors=True)


def _save_checkpoint(
    root: Path,
    epoch: int,
    state: dict[str, Any],
    save_replay: Callable[[Path], None] | None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    previous = read_latest(root)
    name = f"epoch_{epoch:06d}"
    if previous is not None and previous["name"] == name:
        raise CheckpointError(f"checkpoint {name} is already committed in {root}")
    maybe_kill("checkpoint_start", epoch)
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
    maybe_kill("checkpoint_state", epoch)
    files = {str(p.relative_to(tmp)): _hash_and_sync(p) for p in _files(tmp)}
    for folder in sorted({p.parent for p in _files(tmp)} | {tmp}):
        fsync_dir(folder)
    try:
        _check_folder(tmp, files, hashes=False)  # just hashed: sizes, replay, archive
    except CheckpointError as err:
        kept = f"epoch {previous['epoch']}" if previous else "none"
        raise CheckpointError(
            f"checkpoint of epoch {epoch} failed verification and was not committed: {err}. "
            f"The committed checkpoint is unchanged ({kept}); this is a bug, please report it"
        ) from err
    maybe_kill("checkpoint_verified", epoch)
    final = root / name
    if final.exists():  # debris of a kill between rename and commit
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(root)
    maybe_kill("checkpoint_renamed", epoch)
    fallback = None
    if previous is not None:
        fallback = {k: previous[k] for k in ("epoch", "name", "files")}
    atomic_write_json(
        root / LATEST,
        {"format": FORMAT, "epoch": epoch, "name": name, "files": files, "previous": fallback},
    )
    maybe_kill("checkpoint_committed", epoch)
    if previous is not None and previous.get("previous"):  # only the newest two are kept
        shutil.rmtree(root / previous["previous"]["name"], ignore_errors=True)
    return final


def _verify_record(root: Path, record: dict[str, Any], replay: bool = True) -> None:
    try:
        _check_folder(root / record["name"], record["files"], hashes=True, replay=replay)
    except CheckpointError as err:
        raise CheckpointError(f"{err} (checkpoint of epoch {record['epoch']})") from err


def verify_checkpoint(root: str | Path) -> dict[str, Any]:
    """Check every file of the committed checkpoint against LATEST.json (sizes, SHA-256,
    replay lengths); returns the record."""
    root = Path(root)
    record = read_latest(root)
    if record is None:
        raise CheckpointError(f"no committed checkpoint in {root} (no {LATEST})")
    try:
        _verify_record(root, record)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; the run cannot resume from it. {_fix(root)}") from err
    return record


def verify_state_file(root: str | Path) -> dict[str, Any]:
    """Check only the committed checkpoint's state.pt (size, SHA-256, archive): what a
    finished run's agent needs. Returns the record; raises CheckpointError."""
    root = Path(root)
    record = read_latest(root)
    if record is None:
        raise CheckpointError(f"no committed checkpoint in {root} (no {LATEST})")
    _verify_record(root, record, replay=False)
    return record


class UnsafeStateError(CheckpointError):
    """A state file that only the unpickler that runs code could read: never loaded."""


def convert_command(path: Path) -> str:
    """The one-off command that converts the run folder holding state file `path`."""
    return f"rem convert-checkpoint {run_of_state(path)} --i-trust-this-folder"


def _unsafe_message(path: Path, err: Exception) -> str:
    found = re.search(r"GLOBAL (\S+)", str(err))
    what = f" ({found.group(1)})" if found else ""
    return (
        f"{path} was not loaded: it holds Python objects{what} that only an unpickler which "
        f"can run code would read, and rem loads plain data only. A crafted file looks like "
        f"this; so does a checkpoint of an older rem. If this folder comes from a source you "
        f"trust, convert it once with `{convert_command(path)}`"
    )


def load_state_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A state.pt read with `torch.load(weights_only=True)` -> its dict. Raises
    UnsafeStateError (one line, the convert command) for a file that would run code,
    CheckpointError for an unreadable one. Never executes anything in the file."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeStateError(_unsafe_message(path, err)) from err
    except Exception as err:  # noqa: BLE001 - any other failure means a bad file
        raise CheckpointError(f"cannot read {path}: {str(err).splitlines()[0]}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a rem state file (a {type(state).__name__})")
    if state.get("format") != FORMAT:
        raise UnsafeStateError(
            f"{path} has checkpoint format {state.get('format')!r}, this rem reads format "
            f"{FORMAT}; convert it with `{convert_command(path)}`"
        )
    return state


def _read_state(root: Path, record: dict[str, Any], map_location) -> dict:
    folder = root / record["name"]
    state = load_state_file(folder / STATE, map_location)
    if state.get("epoch") != record["epoch"]:
        raise CheckpointError(f"{folder / STATE} does not match {root / LATEST} (epoch)")
    return state


def _load_verified(root: Path, record: dict[str, Any], map_location, replay: bool) -> dict:
    """Verify one committed checkpoint (sizes, SHA-256, replay lengths), then read its state."""
    _verify_record(root, record, replay)
    return _read_state(root, record, map_location)


def _previous_to_fall_back_to(
    root: Path, record: dict[str, Any], latest_error: CheckpointError, fallback: bool
) -> dict[str, Any]:
    """The record of the checkpoint before the unusable latest one; a CheckpointError naming
    the fix when there is none or `fallback` is off (the previous one is then kept)."""
    previous = record.get("previous")
    if previous is None:
        raise CheckpointError(
            f"{latest_error}; there is no earlier checkpoint to fall back to, so the run cannot "
            f"resume. {_fix(root)}"
        ) from latest_error
    if not fallback:
        raise CheckpointError(
            f"{latest_error}. The previous checkpoint (epoch {previous['epoch']}) is kept: "
            f"`rem train` on this run resumes from it"
        ) from latest_error
    return previous


def _make_previous_latest(root: Path, record: dict[str, Any], previous: dict[str, Any]) -> Path:
    """Keep the unusable latest checkpoint as `corrupt-epoch_N/` (for inspection) and point
    LATEST.json at the previous one -> the folder set aside."""
    aside = root / f"{CORRUPT}{record['name']}"
    if aside.exists():
        shutil.rmtree(aside)
    if (root / record["name"]).exists():
        os.rename(root / record["name"], aside)
    atomic_write_json(root / LATEST, {"format": FORMAT, **previous, "previous": None})
    return aside


def load_checkpoint(
    root: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    fallback: bool = False,
    warn: Callable[[str], None] | None = None,
    replay: bool = True,
) -> tuple[dict, Path]:
    """Verify and load the committed checkpoint -> (state dict, its folder).

    With `fallback`, an unusable latest checkpoint gives way to the previous one (verified
    the same way): `warn` gets a message with the epochs lost, the bad folder is renamed
    `corrupt-epoch_N` and LATEST.json points at the previous checkpoint. Without it (or with
    no usable previous checkpoint) a CheckpointError says what is wrong and the fix.
    `replay=False` verifies and loads state.pt alone (evaluation, the viewer: runs whose
    replay is damaged, e.g. saved before replay versions were bumped on every extend, still give their
    agent).
    """
    root = Path(root)
    record = read_latest(root)
    if record is None:
        raise CheckpointError(f"no committed checkpoint in {root} (no {LATEST})")
    try:
        state = _load_verified(root, record, map_location, replay)
    except UnsafeStateError:
        raise  # not damage: falling back would hide it, and the previous one is alike
    except CheckpointError as err:
        latest_error = err
    else:
        maybe_kill("checkpoint_loaded", record["epoch"])
        return state, root / record["name"]
    previous = _previous_to_fall_back_to(root, record, latest_error, fallback)
    try:
        state = _load_verified(root, previous, map_location, replay)
    except UnsafeStateError:
        raise
    except CheckpointError as err:
        raise CheckpointError(
            f"both checkpoints are unusable: {latest_error}; {err}. The run cannot resume. "
            f"{_fix(root)}"
        ) from err
    aside = _make_previous_latest(root, record, previous)
    lost = record["epoch"] - previous["epoch"]
    (warn or print)(
        f"WARNING: the latest checkpoint (epoch {record['epoch']}) is unusable: {latest_error}. "
        f"Resuming from the previous checkpoint (epoch {previous['epoch']}): {lost} "
        f"epoch{'s' if lost != 1 else ''} lost, trained again. The bad checkpoint is kept as "
        f"{aside} for inspection; delete it when done."
    )
    maybe_kill("checkpoint_loaded", previous["epoch"])
    return state, root / previous["name"]
