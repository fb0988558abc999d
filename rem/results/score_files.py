"""Score files: loading and validation of published and extra score files and of the
human/random reference tables.

A score file is one JSON object, key = Atari 100k game, value = list of raw final scores, one
per run (seed). The human/random reference files have the same shape with one value per game;
their keys define the games we know (the 26 Atari 100k games).

Every error names the file, the game and the problem, so a user who drops a malformed
baseline into `results/published/extra/` learns exactly which entry to fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rem.results.stats.checks import swapped_file_hint
from rem.results.stats.types import References, ScoreFileError, Scores


def _read_json_object(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: score file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ScoreFileError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            'expected {"<Game>": [score, ...], ...}'
        ) from None
    if not isinstance(data, dict):
        raise ScoreFileError(
            f"{path}: top level is a JSON {type(data).__name__}, expected an object "
            '{"<Game>": [score, ...], ...}'
        )
    return data


def _check_runs(path: Path, game: str, value: object) -> np.ndarray:
    if not isinstance(value, list):
        raise ScoreFileError(
            f"{path}, game {game!r}: value is a JSON {type(value).__name__}, expected a list "
            "of raw scores (one per run)"
        )
    for i, x in enumerate(value):
        # bool is an int in Python but never a score.
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ScoreFileError(f"{path}, game {game!r}, run {i}: {x!r} is not a number")
        if not math.isfinite(x):
            raise ScoreFileError(
                f"{path}, game {game!r}, run {i}: score is {x} (NaN/inf); remove the run or fix it"
            )
    return np.asarray(value, dtype=np.float64)


def load_scores(
    path: str | Path,
    *,
    name: str,
    known_games: tuple[str, ...],
    required_games: tuple[str, ...] | None,
) -> Scores:
    """Load and validate one score file.

    Every key must be a known game; every game in `required_games` must be present with at
    least one run; other known games may hold empty lists (the ablation files do).
    Returns the scores restricted to `required_games`, in that order, or, when it is None,
    to every game with at least one run, in `known_games` order.
    """
    path = Path(path)
    data = _read_json_object(path)
    known = set(known_games)
    for game in data:
        if game not in known:
            raise ScoreFileError(
                f"{path}, game {game!r}: unknown game; valid games are {', '.join(known_games)}"
                + swapped_file_hint(data, known_games)
            )
    runs = {game: _check_runs(path, game, value) for game, value in data.items()}
    if required_games is None:
        required_games = tuple(g for g in known_games if g in runs and runs[g].size > 0)
        if not required_games:
            raise ScoreFileError(f"{path}: no game has any run")
    for game in required_games:
        if game not in runs:
            raise ScoreFileError(
                f"{path}, game {game!r}: game missing; this study needs scores for "
                f"{len(required_games)} games ({', '.join(required_games)})"
            )
        if runs[game].size == 0:
            raise ScoreFileError(
                f"{path}, game {game!r}: empty list, but this study needs at least one run per game"
            )
    return Scores(name, tuple(required_games), {g: runs[g] for g in required_games}, str(path))


def load_references(published_dir: str | Path) -> References:
    """RANDOM.json and HUMAN.json: one value per game, the same 26 games in both."""
    published_dir = Path(published_dir)
    refs = {}
    for kind in ("RANDOM", "HUMAN"):
        path = published_dir / f"{kind}.json"
        data = _read_json_object(path)
        values = {}
        for game, value in data.items():
            arr = _check_runs(path, game, value)
            if arr.size != 1:
                raise ScoreFileError(
                    f"{path}, game {game!r}: reference needs exactly one value, got {arr.size}"
                )
            values[game] = float(arr[0])
        refs[kind] = values
    if set(refs["RANDOM"]) != set(refs["HUMAN"]):
        diff = sorted(set(refs["RANDOM"]) ^ set(refs["HUMAN"]))
        raise ScoreFileError(
            f"{published_dir}: RANDOM.json and HUMAN.json list different games: {diff}"
        )
    for game in refs["HUMAN"]:
        if refs["HUMAN"][game] <= refs["RANDOM"][game]:
            raise ScoreFileError(
                f"{published_dir / 'HUMAN.json'}, game {game!r}: human score must exceed the "
                "random score for normalisation"
            )
    return References(random=refs["RANDOM"], human=refs["HUMAN"])
