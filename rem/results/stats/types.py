"""The score types every statistic shares: per-game scores of one algorithm, the human and
random reference scores, and the errors of bad score input. A leaf: the checks, the metrics
and the score files build on it, it imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ScoreFileError(ValueError):
    """A score file is malformed; the message names the file, the game and the problem."""


class ScoreInputError(ScoreFileError):
    """Scores that rliable would accept but that are certainly the wrong thing."""


@dataclass(frozen=True)
class Scores:
    """Per-game scores of one algorithm: `runs[game]` is a float64 array (n_runs_of_game,).

    Run counts may differ between games (the no-pop ablation has 3 to 5); nothing here pads
    or truncates them.
    """

    name: str
    games: tuple[str, ...]
    runs: dict[str, np.ndarray]
    source: str = ""

    def run_counts(self) -> dict[str, int]:
        return {g: len(self.runs[g]) for g in self.games}

    @property
    def balanced(self) -> bool:
        return len(set(self.run_counts().values())) == 1

    def matrix(self) -> np.ndarray:
        """(runs, games) matrix, rliable's layout; only defined when every game has n runs."""
        if not self.balanced:
            raise ValueError(
                f"{self.name}: unequal run counts per game {self.run_counts()}; "
                "use the ragged code paths instead of a (runs x games) matrix"
            )
        return np.stack([self.runs[g] for g in self.games], axis=1)

    def subset(self, games: tuple[str, ...] | list[str]) -> Scores:
        missing = [g for g in games if g not in self.runs]
        if missing:
            raise ScoreFileError(f"{self.source or self.name}: no scores for games {missing}")
        return Scores(self.name, tuple(games), {g: self.runs[g] for g in games}, self.source)

    def renamed(self, name: str) -> Scores:
        return Scores(name, self.games, self.runs, self.source)


@dataclass(frozen=True)
class References:
    """Random and human reference scores per game: hns = (score - random) / (human - random)."""

    random: dict[str, float]
    human: dict[str, float]

    @property
    def games(self) -> tuple[str, ...]:
        return tuple(sorted(self.human))

    def hns(self, game: str, raw: float | np.ndarray) -> float | np.ndarray:
        if game not in self.human:
            raise ScoreFileError(f"unknown game {game!r}; known games: {', '.join(self.games)}")
        return (raw - self.random[game]) / (self.human[game] - self.random[game])
