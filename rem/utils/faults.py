"""Test hooks: make a process SIGKILL itself at a named point, to test crash safety.

`REM_TEST_KILL_AT=POINT[:EPOCH][@N]` kills the process the N-th time (default 1) it reaches
POINT, counting only hits in epoch EPOCH when given. Examples: `checkpoint_mid:4` (the
checkpoint of epoch 4, replay written, state not yet), `collect:3@50` (the 50th action of
epoch 3's collection), `replay_write@7` (the 7th episode file a replay save writes in this
process). A hook that does not know the epoch (collection, evaluation, replay saves, finish)
takes the last one a hook announced: the trainer announces `epoch_start`, the checkpoint
hooks theirs and a resumed process its loaded checkpoint's, so the final evaluation counts
as the last epoch's. A fresh run is deterministic up to the kill, so moments read from the
trace of an uninterrupted run are the same moments in a new one (scripts/fault_injection.py
draws them); a resumed process starts at an epoch boundary, so `POINT:EPOCH@N` also names
the same moment in it when that moment comes after its checkpoint: kills can be chained.

`REM_FAULT_TRACE=FILE` appends one line `POINT<TAB>EPOCH<TAB>N` per hook reached (N counted
within the epoch): the moments a kill can target.

Unset (normal runs), a hook costs one dict lookup and `watch` returns the policy itself.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Any

ENV_VAR = "REM_TEST_KILL_AT"
TRACE_VAR = "REM_FAULT_TRACE"
WRITE_FAULT_VAR = "REM_TEST_WRITE_FAULT"  # rem.utils.write_faults: hooks announce epochs for it

# point -> where it is (in the order a run reaches them)
POINTS: dict[str, str] = {
    "epoch_start": "an epoch begins (trainer)",
    "collect": "before each action of the train policy during collection",
    "evaluate": "before each (batched) action of the test policy: evaluations, final evaluation",
    "epoch_end": "after the epoch's metrics line, before its checkpoint",
    "checkpoint_start": "a checkpoint begins (nothing written yet)",
    "replay_write": "in a replay save, before writing one episode file",
    "replay_manifest": "in a replay save, episode files written, manifest not yet",
    "replay_cleanup": "in a replay save, manifest written, stale files not yet deleted",
    "checkpoint_mid": "in a checkpoint, replay written, state.pt not yet",
    "checkpoint_state": "in a checkpoint, state.pt written, not yet hashed and verified",
    "checkpoint_verified": "in a checkpoint, verified, folder not yet renamed into place",
    "checkpoint_renamed": "in a checkpoint's commit: folder in place, LATEST.json not switched",
    "checkpoint_committed": "in a checkpoint's commit: LATEST.json switched, the oldest not deleted",
    "after_checkpoint": "after the checkpoint (trainer)",
    "finish_scores": "scores.json written, manifest and COMPLETED not yet",
    "finish_manifest": "manifest marked completed, COMPLETED not yet",
    "checkpoint_loaded": "a resuming process loaded its verified checkpoint (announces its epoch)",
}

_counts: Counter[tuple[str, int | str | None]] = Counter()  # (point, epoch or ANY)
ANY = "any epoch"
_parsed: dict[str, tuple[str, int | None, int]] = {}
_epoch: int | None = None  # the last epoch a hook announced


def parse(spec: str) -> tuple[str, int | None, int]:
    """'point[:epoch][@n]' -> (point, epoch or None, n); ValueError naming the grammar."""
    if spec not in _parsed:
        head, _, n = spec.partition("@")
        name, colon, epoch = head.partition(":")
        ok = name in POINTS and (not colon or epoch.isdigit()) and (n.isdigit() or "@" not in spec)
        if not ok or (n and int(n) < 1):
            raise ValueError(
                f"{ENV_VAR}={spec!r}: expected POINT[:EPOCH][@N] (N >= 1) with POINT one of "
                f"{', '.join(POINTS)}"
            )
        _parsed[spec] = (name, int(epoch) if colon else None, int(n) if n else 1)
    return _parsed[spec]


def current_epoch() -> int | None:
    """The last epoch a hook announced (None before the first)."""
    return _epoch


def armed() -> bool:
    """True when a kill or a trace is requested for this process."""
    return bool(os.environ.get(ENV_VAR) or os.environ.get(TRACE_VAR))


def maybe_kill(point: str, epoch: int | None = None) -> None:
    """A named moment of the run (see the module docstring); a no-op unless armed."""
    global _epoch
    spec, trace = os.environ.get(ENV_VAR), os.environ.get(TRACE_VAR)
    if not spec and not trace and not os.environ.get(WRITE_FAULT_VAR):
        return
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if epoch is not None:
        _epoch = epoch
    _counts[point, ANY] += 1
    _counts[point, _epoch] += 1
    if trace:
        with open(trace, "a") as f:
            f.write(f"{point}\t{'' if _epoch is None else _epoch}\t{_counts[point, _epoch]}\n")
    if spec:
        name, at_epoch, n = parse(spec)
        in_epoch = at_epoch is None or at_epoch == _epoch
        if name == point and in_epoch and _counts[point, ANY if at_epoch is None else _epoch] == n:
            os.kill(os.getpid(), signal.SIGKILL)


class _Watched:
    """A policy that reaches `point` before each `act` (everything else is the policy's)."""

    def __init__(self, policy: Any, point: str) -> None:
        object.__setattr__(self, "_policy", policy)
        object.__setattr__(self, "_point", point)

    def act(self, obs):
        maybe_kill(self._point)
        return self._policy.act(obs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._policy, name, value)


def watch(policy: Any, point: str) -> Any:
    """`policy` itself in normal runs; under a kill spec or a trace, one whose every `act`
    first reaches `point` (collection and evaluation loops live outside the trainer)."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    return _Watched(policy, point) if armed() else policy
