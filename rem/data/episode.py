"""One episode (a life, in the train env) as numpy arrays
(docs/protocol.md#episodes-and-the-replay).

Per step t: `observations[t]` is the frame seen before acting, `actions[t]` the action,
`rewards[t]` the raw env reward after it, `ends[t]` 1 if the episode ended after it.
The frame after the final action is never stored. Episodes are immutable: extending one
builds a new object, so a sampler's snapshot stays valid while the replay changes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

FRAME_SHAPE = (3, 64, 64)


@dataclass(frozen=True)
class Episode:
    observations: np.ndarray  # uint8 (t, 3, h, w)
    actions: np.ndarray  # int64 (t,)
    rewards: np.ndarray  # float32 (t,)
    ends: np.ndarray  # uint8 (t,)

    def __post_init__(self) -> None:
        obs = np.asarray(self.observations)
        if obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[1] != 3:
            raise ValueError(
                f"observations must be uint8 (t, 3, h, w) CHW frames, got {obs.dtype} {obs.shape}"
            )
        t = len(obs)
        arrays = {
            "actions": np.asarray(self.actions, dtype=np.int64),
            "rewards": np.asarray(self.rewards, dtype=np.float32),
            "ends": np.asarray(self.ends, dtype=np.uint8),
        }
        for name, arr in arrays.items():
            if arr.shape != (t,):
                raise ValueError(
                    f"{name} must have shape ({t},) like observations, got {arr.shape}"
                )
        if not np.isin(arrays["ends"], (0, 1)).all():
            raise ValueError("ends must be 0 or 1")
        # An episode stops right after its first end (the reference truncates the same way).
        end_at = np.flatnonzero(arrays["ends"])
        stop = int(end_at[0]) + 1 if len(end_at) else t
        object.__setattr__(self, "observations", obs[:stop])
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr[:stop])

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def ended(self) -> bool:
        """True when the last step ends the episode (False: unfinished, a collector will extend it)."""
        return len(self) > 0 and bool(self.ends[-1])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.observations, self.actions, self.rewards, self.ends))

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))

    def concat(self, other: Episode) -> Episode:
        """This (unfinished) episode followed by `other`."""
        if self.ended:
            raise ValueError("cannot extend an episode that already ended")
        return Episode(
            np.concatenate([self.observations, other.observations]),
            np.concatenate([self.actions, other.actions]),
            np.concatenate([self.rewards, other.rewards]),
            np.concatenate([self.ends, other.ends]),
        )

    def to_bytes(self) -> bytes:
        """Uncompressed .npz bytes (frames are a small share of a checkpoint's time)."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            observations=self.observations,
            actions=self.actions,
            rewards=self.rewards,
            ends=self.ends,
        )
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path) -> Episode:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["observations"], data["actions"], data["rewards"], data["ends"])
