"""Segment sampling for the tokenizer, world model and actor-critic (docs/protocol.md#segment-sampling).

The index holds every valid (episode, start) pair: an episode of n steps gives
max(0, n - context) samples (the clamp fixes the reference's negative counts). Sample i is

- right padding (tokenizer, world model): steps [i, i + S), zero-padded past the episode end;
- left padding (actor-critic): steps [stop - S, stop) with stop = context + 1 + i,
  zero-padded before the episode start, so the last step is always real.

Either way a segment never crosses an episode and holds at least context + 1 real steps.
Two ways to draw the pairs (an agent's registry entry, rem.config.AGENTS, names its mode):

- `SegmentSampler` ("segments", REM): uniform over the pairs, so an episode is drawn in
  proportion to its length;
- `EpisodeSampler` ("episodes", IRIS): an episode uniformly, then a sample i uniformly within
  it, with replacement (IRIS's `EpisodesDataset.sample_batch`; its sampling weights only
  apply to a replay of at most 4 episodes, so every run uses uniform weights); short
  episodes are drawn as often as long ones.

`SegmentSampler` is uniform over the pairs, without replacement within a pass: `rebuild()` (called
when a component starts its epoch) snapshots the replay and shuffles; each `sample()` takes
the next batch; an exhausted pass reshuffles the same snapshot (the reference's restarted
DataLoader). A batch that straddles two passes may repeat a pair.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from rem.data.episode import Episode
from rem.data.replay import Replay

Padding = Literal["right", "left"]
Batch = dict[str, torch.Tensor]


class SegmentSampler:
    def __init__(
        self,
        replay: Replay,
        *,
        batch_size: int,
        segment_length: int,
        context: int = 0,
        padding: Padding = "right",
        rng: np.random.Generator,
        pin_memory: bool = False,
    ) -> None:
        """pin_memory: build batches in page-locked host memory (a CUDA run), so that
        `batch_to_device` copies them asynchronously instead of stalling the host."""
        if padding not in ("right", "left"):
            raise ValueError(f"padding must be 'right' or 'left', got {padding!r}")
        if batch_size < 1 or context < 0:
            raise ValueError(f"need batch_size >= 1 and context >= 0, got {batch_size}, {context}")
        if segment_length <= context:
            raise ValueError(
                f"segment_length ({segment_length}) must exceed context ({context}): "
                "every segment holds more than `context` real steps"
            )
        self.replay = replay
        self.batch_size = batch_size
        self.segment_length = segment_length
        self.context = context
        self.padding = padding
        self.rng = rng
        self.pin_memory = pin_memory
        self._episodes: list[Episode] = []
        self._pairs = np.zeros((0, 2), dtype=np.int64)  # (index into _episodes, sample i)
        self._order = np.zeros(0, dtype=np.int64)
        self._pos = 0

    def rebuild(self) -> int:
        """Snapshot the replay and start a fresh shuffled pass; returns the number of pairs."""
        self._episodes = list(self.replay.episodes())
        counts = np.array([max(0, len(e) - self.context) for e in self._episodes], dtype=np.int64)
        episode_index = np.repeat(np.arange(len(self._episodes)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        self._pairs = np.stack([episode_index, offsets], axis=1)
        self._shuffle()
        return len(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def _shuffle(self) -> None:
        self._order = self.rng.permutation(len(self._pairs))
        self._pos = 0

    def _next_indices(self) -> np.ndarray:
        if len(self._pairs) == 0:
            raise RuntimeError(
                f"no episode in the replay has more than {self.context} steps "
                "(call rebuild() after collecting data)"
            )
        picked = []
        needed = self.batch_size
        while needed:
            if self._pos == len(self._order):
                self._shuffle()
            take = self._order[self._pos : self._pos + needed]
            self._pos += len(take)
            needed -= len(take)
            picked.append(take)
        return np.concatenate(picked)

    def window(self, i: int) -> tuple[int, int]:
        """Episode steps [start, stop) of sample i (may reach outside [0, length))."""
        if self.padding == "right":
            return i, i + self.segment_length
        stop = self.context + 1 + i
        return stop - self.segment_length, stop

    def _draw(self) -> np.ndarray:
        """(batch, 2) pairs (index into the snapshot's episodes, sample i) of the next batch."""
        return self._pairs[self._next_indices()]

    def sample(self) -> Batch:
        """Next batch. observations uint8 (b,s,3,h,w), actions int64 (b,s), rewards float32
        (b,s), ends int64 (b,s), mask_padding bool (b,s) (True = real step)."""
        b, s = self.batch_size, self.segment_length
        frame_shape = self._episodes[0].observations.shape[1:] if self._episodes else (3, 64, 64)
        # torch buffers (page-locked when asked) filled through numpy views
        out = {
            "observations": torch.zeros((b, s, *frame_shape), dtype=torch.uint8),
            "actions": torch.zeros((b, s), dtype=torch.int64),
            "rewards": torch.zeros((b, s), dtype=torch.float32),
            "ends": torch.zeros((b, s), dtype=torch.int64),
            "mask_padding": torch.zeros((b, s), dtype=torch.bool),
        }
        if self.pin_memory:
            out = {k: v.pin_memory() for k, v in out.items()}
        observations, actions, rewards, ends, mask = (v.numpy() for v in out.values())
        for row, (e, i) in enumerate(self._draw()):
            episode = self._episodes[e]
            start, stop = self.window(int(i))
            lo, hi = max(start, 0), min(stop, len(episode))
            dst = slice(lo - start, hi - start)
            observations[row, dst] = episode.observations[lo:hi]
            actions[row, dst] = episode.actions[lo:hi]
            rewards[row, dst] = episode.rewards[lo:hi]
            ends[row, dst] = episode.ends[lo:hi]
            mask[row, dst] = True
        assert (mask.sum(1) > self.context).all(), "a segment has too few real steps"
        return out


class EpisodeSampler(SegmentSampler):
    """IRIS's draw (module docstring): per row an episode uniformly among those with more
    than `context` steps, then i uniformly in [0, len - context); with replacement."""

    _counts = np.zeros(0, dtype=np.int64)  # per snapshot episode: its number of samples
    _usable = np.zeros(0, dtype=np.int64)  # snapshot episodes with at least one sample

    def rebuild(self) -> int:
        """Snapshot the replay; returns the number of (episode, start) pairs it holds."""
        self._episodes = list(self.replay.episodes())
        self._counts = np.array(
            [max(0, len(e) - self.context) for e in self._episodes], dtype=np.int64
        )
        self._usable = np.flatnonzero(self._counts)
        self._pairs = np.zeros((int(self._counts.sum()), 2), dtype=np.int64)  # only its length
        return len(self._pairs)

    def _draw(self) -> np.ndarray:
        if len(self._usable) == 0:
            raise RuntimeError(
                f"no episode in the replay has more than {self.context} steps "
                "(call rebuild() after collecting data)"
            )
        episodes = self._usable[self.rng.integers(len(self._usable), size=self.batch_size)]
        starts = self.rng.integers(self._counts[episodes])  # one bound per row
        return np.stack([episodes, starts], axis=1)


SAMPLERS: dict[str, type[SegmentSampler]] = {"segments": SegmentSampler, "episodes": EpisodeSampler}


def batch_to_device(batch: Batch, device: torch.device | str) -> Batch:
    """Move a batch to `device`; observations uint8 (b,s,3,h,w) -> float32 in [0, 1].

    The copy is asynchronous only from page-locked memory (`SegmentSampler(pin_memory=True)`);
    from ordinary memory CUDA makes the host wait for it."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    out["observations"] = out["observations"].float().div_(255.0)
    return out
