"""Test hook: make the trainer SIGKILL itself at a named point, to test crash safety.

`REM_TEST_KILL_AT=point:epoch` (e.g. `checkpoint_mid:4`) kills the process the first time
`maybe_kill(point, epoch)` is reached with that epoch. Points: `epoch_end` (after the epoch's
metrics line), `checkpoint_mid` (replay written, state not yet), `after_checkpoint`.
Unset in normal runs, so this costs one dict lookup per call.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "REM_TEST_KILL_AT"
POINTS = ("epoch_end", "checkpoint_mid", "after_checkpoint")


def maybe_kill(point: str, epoch: int) -> None:
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    name, _, at = spec.partition(":")
    if name not in POINTS or not at.isdigit():
        raise ValueError(f"{ENV_VAR}={spec!r}: expected POINT:EPOCH with POINT in {POINTS}")
    if name == point and int(at) == epoch:
        os.kill(os.getpid(), signal.SIGKILL)
