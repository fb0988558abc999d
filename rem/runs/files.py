"""Reading a run folder's files: the manifest, `metrics.jsonl` and the final scores.

Every reader of a run folder goes through these, so a half-written file means the same thing
everywhere: `metrics.jsonl`'s last line may be an unfinished write and is skipped
(rem.utils.jsonl), a manifest that is not a JSON object is a `ManifestError` the caller turns
into its own note or error, a score file that cannot be used is a `ScoreError` naming the fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rem.runs.layout import COMPLETED, MANIFEST, METRICS, RunKey, run_path, score_file
from rem.utils.jsonl import read_jsonl


class ManifestError(ValueError):
    """A run's manifest.json exists but is not a JSON object; `parsed`: it is JSON, of
    another kind."""

    def __init__(self, message: str, parsed: bool = False) -> None:
        super().__init__(message)
        self.parsed = parsed


class ScoreError(ValueError):
    """A run's score file cannot be used; the message names the file and the fix."""


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's manifest.json as a dict; None when there is none."""
    path = Path(run_dir) / MANIFEST
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ManifestError(f"{path} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ManifestError(f"{path} is not a JSON object", parsed=True)
    return data


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a metrics file, or of a run folder's `metrics.jsonl` ([] when there is
    none yet); a torn last line is skipped, an earlier bad line raises
    rem.utils.jsonl.JsonlError."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    if not path.exists():
        return []
    return read_jsonl(path)


def read_score(path: Path, key: RunKey) -> tuple[float, int]:
    """(mean return, number of episodes) of a score file of `rem train` (RUN_DIR/scores.json)
    or of `rem evaluate --checkpoint` (whose `seed` is the evaluation's, `run_seed` the run's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ScoreError(f"{path}: cannot read the run's scores ({err}); re-run its job") from err
    if not isinstance(data, dict):
        raise ScoreError(f"{path}: not a JSON object of scores; re-run its job")
    returns = data.get("returns")
    if not isinstance(returns, list) or not returns:
        raise ScoreError(f"{path}: no 'returns' list of episode returns; re-run its job")
    if any(isinstance(r, bool) or not isinstance(r, (int, float)) for r in returns):
        raise ScoreError(f"{path}: 'returns' holds a value that is not a number")
    raw = sum(returns) / len(returns)
    if not math.isfinite(raw):
        raise ScoreError(f"{path}: mean return is {raw}")
    run_seed = data.get("run_seed", data.get("seed"))
    for name, got, want in (
        ("game", data.get("game"), key.game),
        ("variant", data.get("variant"), key.variant),
        ("seed", run_seed, key.seed),
    ):
        if got is not None and got != want:
            raise ScoreError(f"{path}: {name} is {got!r} but the run is {want!r}")
    return raw, len(returns)


def is_finished(runs_dir: str | Path, key: RunKey, evaluations: str | Path | None = None) -> bool:
    """The run's COMPLETED marker and its score file both exist (nothing waits for them)."""
    return (run_path(runs_dir, key) / COMPLETED).is_file() and score_file(
        runs_dir, key, evaluations
    ).is_file()


def finished_runs(
    runs_dir: str | Path, expected: list[RunKey], evaluations: str | Path | None = None
) -> list[RunKey]:
    """The expected runs that are finished (`is_finished`), in their order."""
    return [key for key in expected if is_finished(runs_dir, key, evaluations)]
