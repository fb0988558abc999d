"""In-memory replay of uint8 episodes with a memory bound, FIFO eviction and
incremental, crash-safe save/load (docs/protocol.md#episodes-and-the-replay).

The reference caps the replay by *process* RSS (15 GiB); we cap the replay's own bytes
and/or steps, evicting the oldest episodes first (never the newest one). Episodes are
immutable `Episode` objects keyed by an integer id that is never reused; `extend` replaces
an unfinished episode by a longer one and bumps its version.

On-disk layout of `save(folder)`:

    folder/manifest.json                  written last, atomically: the save's contents
    folder/episodes/<uid>-<id>-v<version>.npz

A save writes only the episode files the folder does not hold yet (new or extended
episodes), then the manifest, then deletes files the manifest no longer names (evicted
episodes, old versions). A crash before the manifest is replaced leaves the previous
manifest and every file it names intact, so the previous save stays loadable.

A file name is written once and never changes content: every `extend` bumps the episode's
version, so an extended episode always gets a new name. (Skipping existing names is what
makes saves incremental, and what lets a checkpoint start from hard links of the previous
one.) `verify_saved(folder)` checks a save against its manifest by reading only the .npy
headers inside each file, so a checkpoint can be checked before it is committed.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rem.data.episode import Episode
from rem.utils.atomic import atomic_write_bytes, atomic_write_json
from rem.utils.faults import maybe_kill

MANIFEST = "manifest.json"  # the replay save's own format, not the run folder's (rem.runs.layout)
FORMAT = 1
ARRAYS = ("observations", "actions", "rewards", "ends")


class ReplayError(ValueError):
    """A saved replay does not match its manifest (missing, truncated or stale file)."""


def episode_file_length(path: str | Path) -> int:
    """Steps in an episode file, from the .npy headers inside the .npz (no array is read).

    Raises ReplayError if the file is not a complete episode file: an array is missing, the
    arrays disagree on the number of steps, or an array's stored bytes are not what its
    header announces (a truncated or overwritten file).
    """
    path = Path(path)
    lengths = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in ARRAYS:
                info = archive.getinfo(f"{name}.npy")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(member)
                    header_bytes = member.tell()
                expected = header_bytes + int(np.prod(shape)) * dtype.itemsize
                if info.file_size != expected:
                    raise ReplayError(
                        f"{path}: {name} holds {info.file_size} bytes, its header needs {expected}"
                    )
                lengths[name] = shape[0] if shape else -1
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, ReplayError):
            raise
        raise ReplayError(f"{path} is not a readable episode file ({err})") from err
    if len(set(lengths.values())) != 1:
        raise ReplayError(f"{path}: arrays disagree on the number of steps {lengths}")
    return lengths["actions"]


def verify_saved(folder: str | Path) -> int:
    """Check every episode file named by a save's manifest: present, complete, and holding the
    recorded number of steps (header reads only). Returns the total steps; raises ReplayError
    (FileNotFoundError for a missing manifest) naming the first bad file."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    total = 0
    for entry in manifest["episodes"]:
        file = folder / "episodes" / entry["file"]
        if not file.is_file():
            raise ReplayError(
                f"{file} named by {folder / MANIFEST} is missing: the replay save is damaged"
            )
        length = episode_file_length(file)
        if length != entry["length"]:
            raise ReplayError(
                f"{file} holds {length} steps, {folder / MANIFEST} says {entry['length']}"
            )
        total += length
    if total != manifest["num_steps"]:
        raise ReplayError(
            f"{folder / MANIFEST}: episodes hold {total} steps, num_steps says "
            f"{manifest['num_steps']}"
        )
    return total


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {folder} is not a saved replay")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise ReplayError(f"{path} is not valid JSON ({err})") from err
    if manifest.get("format") != FORMAT:
        raise ReplayError(f"{path}: unsupported replay format {manifest.get('format')!r}")
    return manifest


class Replay:
    """Episodes in insertion order with an optional bound on bytes and/or steps."""

    def __init__(self, max_bytes: int | None = None, max_steps: int | None = None) -> None:
        for name, value in (("max_bytes", max_bytes), ("max_steps", max_steps)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None (unbounded), got {value}")
        self.max_bytes = max_bytes
        self.max_steps = max_steps
        self._episodes: dict[int, Episode] = {}
        self._versions: dict[int, int] = {}
        self._next_id = 0
        self._num_steps = 0
        self._nbytes = 0
        self.num_evicted = 0
        self.uid = uuid.uuid4().hex[:12]  # names this replay's files; never collide with another's

    # ------------------------------------------------------------------ contents

    def __len__(self) -> int:
        return len(self._episodes)

    def __contains__(self, episode_id: int) -> bool:
        return episode_id in self._episodes

    def __getitem__(self, episode_id: int) -> Episode:
        return self._episodes[episode_id]

    def ids(self) -> list[int]:
        return list(self._episodes)

    def episodes(self) -> Iterator[Episode]:
        return iter(list(self._episodes.values()))

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def add(self, episode: Episode) -> int:
        """Store a new episode (finished or not); returns its id. May evict old episodes."""
        if len(episode) == 0:
            raise ValueError("cannot add an empty episode")
        episode_id = self._next_id
        self._next_id += 1
        self._put(episode_id, episode, version=0)
        self._evict()
        return episode_id

    def extend(self, episode_id: int, continuation: Episode) -> None:
        """Append steps to the unfinished episode `episode_id` (a collector's next call)."""
        if episode_id not in self._episodes:
            raise KeyError(f"episode {episode_id} is not in the replay (evicted or never added)")
        merged = self._episodes[episode_id].concat(continuation)
        # Read the version before `_drop` forgets it: each extension needs a new file name.
        version = self._versions[episode_id] + 1
        self._drop(episode_id)
        self._put(episode_id, merged, version=version)
        self._evict()

    def clear(self) -> None:
        for episode_id in self.ids():
            self._drop(episode_id)

    def _put(self, episode_id: int, episode: Episode, version: int) -> None:
        self._episodes[episode_id] = episode
        self._versions[episode_id] = version
        self._num_steps += len(episode)
        self._nbytes += episode.nbytes

    def _drop(self, episode_id: int) -> None:
        episode = self._episodes.pop(episode_id)
        self._versions.pop(episode_id)
        self._num_steps -= len(episode)
        self._nbytes -= episode.nbytes

    def _over(self) -> bool:
        return (self.max_bytes is not None and self._nbytes > self.max_bytes) or (
            self.max_steps is not None and self._num_steps > self.max_steps
        )

    def _evict(self) -> None:
        # FIFO; dict order = insertion order, and `extend` re-inserts, so the episode being
        # collected is the newest and is kept even if it alone exceeds the bound.
        while self._over() and len(self._episodes) > 1:
            self._drop(next(iter(self._episodes)))
            self.num_evicted += 1

    # ------------------------------------------------------------------ save / load

    def _file_name(self, episode_id: int) -> str:
        return f"{self.uid}-{episode_id:08d}-v{self._versions[episode_id]}.npz"

    def save(self, folder: str | Path) -> int:
        """Incremental atomic save; returns the number of episode files written."""
        folder = Path(folder)
        episodes_dir = folder / "episodes"
        episodes_dir.mkdir(parents=True, exist_ok=True)
        written = 0
        entries = []
        for episode_id, episode in self._episodes.items():
            name = self._file_name(episode_id)
            if not (episodes_dir / name).is_file():
                maybe_kill("replay_write")
                atomic_write_bytes(episodes_dir / name, episode.to_bytes())
                written += 1
            entries.append(
                {
                    "id": episode_id,
                    "version": self._versions[episode_id],
                    "file": name,
                    "length": len(episode),
                }
            )
        manifest = {
            "format": FORMAT,
            "uid": self.uid,
            "next_id": self._next_id,
            "num_evicted": self.num_evicted,
            "max_bytes": self.max_bytes,
            "max_steps": self.max_steps,
            "num_steps": self._num_steps,
            "episodes": entries,
        }
        maybe_kill("replay_manifest")
        atomic_write_json(folder / MANIFEST, manifest)
        maybe_kill("replay_cleanup")
        keep = {entry["file"] for entry in entries}
        for path in episodes_dir.iterdir():
            if path.name not in keep:  # evicted, superseded, or debris of a crashed save
                path.unlink(missing_ok=True)
        return written

    @classmethod
    def load(
        cls, folder: str | Path, max_bytes: int | None = None, max_steps: int | None = None
    ) -> Replay:
        """Read a `save` folder. The bounds are the saved ones unless given here."""
        folder = Path(folder)
        path = folder / MANIFEST
        manifest = _read_manifest(folder)
        replay = cls(
            max_bytes if max_bytes is not None else manifest["max_bytes"],
            max_steps if max_steps is not None else manifest["max_steps"],
        )
        replay.uid = manifest["uid"]
        for entry in manifest["episodes"]:
            file = folder / "episodes" / entry["file"]
            if not file.is_file():
                raise FileNotFoundError(
                    f"{file} named by {path} is missing: the replay save is damaged"
                )
            episode = Episode.from_file(file)
            if len(episode) != entry["length"]:
                raise ReplayError(
                    f"{file} holds {len(episode)} steps, {path} says {entry['length']}"
                )
            replay._put(entry["id"], episode, version=entry["version"])
        replay._next_id = manifest["next_id"]
        replay.num_evicted = manifest["num_evicted"]
        replay._evict()
        return replay
