"""Input checks for the known rliable traps.

rliable takes a (runs x games) array per algorithm and answers with narrow, plausible
intervals whatever it is fed. These checks catch the usual mistakes before any metric:

- runs and games swapped (`check_matrix`): a (games x runs) array, or a score file keyed by
  run instead of by game (`swapped_file_hint`, used by rem.results.score_files);
- scores already human-normalised fed as raw (`check_raw`), or raw scores fed where
  normalised ones are expected (`check_normalised`);
- a game missing from the normalisation table (`check_games_in_table`);
- unequal run counts (`run_count_note`): legitimate (a crashed seed, a ragged ablation), so
  a note, never an error; the metrics resample each game's own runs.

Each check raises `ScoreInputError` with one line that names the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rem.results.stats.types import References, ScoreInputError, Scores

# A random policy scores at least this much on a game for the "already normalised" check:
# human-normalised scores of a real agent are rarely above 10 in absolute value, raw
# scores on such games are rarely below it (that would be far below random play).
RAW_FLOOR = 10.0
# Human-normalised scores above this on a game are raw scores fed as normalised ones
# (the best Atari 100k agents reach ~10 on Krull/Boxing).
HNS_CEILING = 50.0


def check_matrix(array: np.ndarray, games: Sequence[str], name: str = "scores") -> np.ndarray:
    """A (runs, games) score array for rliable, checked: 2-D, finite, games on axis 1.

    A (games, runs) array (rliable would silently treat games as runs) is an error that
    says to transpose it; so is an axis that matches neither.
    """
    a = np.asarray(array, dtype=np.float64)
    g = len(games)
    if a.ndim != 2:
        raise ScoreInputError(
            f"{name}: rliable needs a 2-D (runs x games) array, got shape {a.shape}"
        )
    if a.shape[1] != g:
        if a.shape[0] == g:
            raise ScoreInputError(
                f"{name}: shape {a.shape} has the {g} games on axis 0; rliable wants "
                f"(runs x games) = ({a.shape[1]}, {g}): pass the transpose (array.T)"
            )
        raise ScoreInputError(
            f"{name}: shape {a.shape} does not have {g} games on either axis ({', '.join(games)})"
        )
    if not np.all(np.isfinite(a)):
        raise ScoreInputError(f"{name}: the array holds NaN or inf")
    return a


def swapped_file_hint(data: Mapping[str, object], known_games: Sequence[str]) -> str:
    """A hint when a score file looks keyed by run (e.g. {"0": [26 scores], ...})."""
    lengths = {len(v) for v in data.values() if isinstance(v, list)}
    unknown = [k for k in data if k not in set(known_games)]
    if unknown and len(unknown) == len(data) and lengths == {len(known_games)}:
        return (
            f" (every key is unknown and every list has {len(known_games)} entries: the file "
            "looks like runs x games; key it by game, one list of per-run scores each)"
        )
    return ""


def check_games_in_table(scores: Scores, refs: References, table: str = "HUMAN/RANDOM") -> None:
    missing = [g for g in scores.games if g not in refs.human]
    if missing:
        raise ScoreInputError(
            f"{scores.source or scores.name}: no normalisation score for {', '.join(missing)} "
            f"in {table} ({len(refs.human)} games known); add the game's human and random "
            "scores to both tables, or drop the game"
        )


def check_raw(scores: Scores, refs: References) -> None:
    """Raw scores expected: refuse a set that looks human-normalised already.

    Evidence: on most games where a random policy scores >= RAW_FLOOR, every run is below
    RAW_FLOOR in absolute value. Needs at least 3 such games to judge.
    """
    eligible = [g for g in scores.games if g in refs.random and refs.random[g] >= RAW_FLOOR]
    if len(eligible) < 3:
        return
    small = [g for g in eligible if np.all(np.abs(scores.runs[g]) < RAW_FLOOR)]
    if len(small) >= 0.8 * len(eligible):
        raise ScoreInputError(
            f"{scores.source or scores.name}: looks already human-normalised: on "
            f"{len(small)} of {len(eligible)} games where random play scores >= {RAW_FLOOR:g} "
            f"(e.g. {small[0]}: random {refs.random[small[0]]:g}) every run is below "
            f"{RAW_FLOOR:g}; pass raw game scores (normalisation is applied here)"
        )


def check_normalised(scores: Scores) -> None:
    """Human-normalised scores expected: refuse a set that looks raw."""
    big = [g for g in scores.games if np.max(np.abs(scores.runs[g])) > HNS_CEILING]
    if len(big) >= max(1, 0.25 * len(scores.games)):
        raise ScoreInputError(
            f"{scores.name}: looks like raw game scores, not human-normalised ones: "
            f"{len(big)} of {len(scores.games)} games have |score| > {HNS_CEILING:g} "
            f"(e.g. {big[0]}: {np.max(np.abs(scores.runs[big[0]])):g}); normalise first "
            "(rem.results.stats.scores.normalize)"
        )


def run_count_note(scores: Mapping[str, Scores]) -> str:
    """'' when every algorithm has the same run count on every game, else a note naming them."""
    counts = {name: s.run_counts() for name, s in scores.items()}
    values = {c for per_game in counts.values() for c in per_game.values()}
    if len(values) <= 1:
        return ""
    parts = []
    for name, per_game in counts.items():
        vs = sorted(set(per_game.values()))
        parts.append(f"{name} {vs[0]}" if len(vs) == 1 else f"{name} {vs[0]}-{vs[-1]}")
    return (
        "Unequal run counts (" + ", ".join(parts) + " runs per game): legitimate, and handled "
        "by resampling each game's own runs; the side with fewer runs has the less reliable "
        "interval (a bootstrap over fewer than 5 runs understates the uncertainty)."
    )
