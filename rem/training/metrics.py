"""Per-epoch metrics: `metrics.jsonl` (source of truth) + optional TensorBoard / wandb.

Each line is one JSON object with an `epoch` key; the final evaluation adds a line with
`"final": true`. After a resume, lines newer than the checkpoint are dropped so the file
reads as if the run had never been interrupted.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rem.runs.files import read_metrics
from rem.utils.atomic import atomic_write_text
from rem.utils.disk_errors import guard
from rem.utils.write_faults import maybe_refuse


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; keep the line parseable by strict readers.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    def __init__(
        self,
        path: str | Path,
        *,
        tensorboard_dir: Path | None = None,
        wandb_config: dict | None = None,
    ) -> None:
        self.path = Path(path)
        self._tb = None
        self._wandb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise RuntimeError(
                    "run.tensorboard=true needs the tensorboard package: pip install tensorboard "
                    "(or run with run.tensorboard=false)"
                ) from err
            self._tb = SummaryWriter(str(tensorboard_dir))
        if wandb_config is not None:
            try:
                import wandb
            except ImportError as err:
                raise RuntimeError(
                    "run.wandb=true needs the wandb package: pip install wandb "
                    "(or run with run.wandb=false)"
                ) from err
            self._wandb = wandb.init(
                project="rem",
                dir=str(self.path.parent),
                mode="offline",
                resume="allow",
                **wandb_config,
            )

    def truncate(self, last_epoch: int) -> None:
        """Keep only the epochs <= last_epoch (and no final-evaluation line)."""
        kept = [
            r
            for r in read_metrics(self.path)
            if r.get("epoch", 0) <= last_epoch and not r.get("final")
        ]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: dict[str, Any]) -> None:
        record = {k: _clean(v) for k, v in record.items()}
        line = json.dumps(record) + "\n"
        maybe_refuse(self.path, len(line.encode()), append=True)
        with guard(self.path, len(line.encode())):  # a torn line is dropped on resume
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        step = int(record.get("epoch", 0))
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "epoch"}
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
