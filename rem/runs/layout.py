"""Where a run lives and what its files are called.

    <runs>/<variant>/<game>/<seed>/
        manifest.json   identity (game, variant, seed, resolved config) + provenance
        metrics.jsonl   one JSON line per epoch
        checkpoints/    committed checkpoints (rem.training.checkpoint):
            LATEST.json     the commit record naming the latest checkpoint
            epoch_N/        state.pt, and replay/ (the replay's own format, rem.data.replay)
        snapshots/      kept checkpoints of `run.snapshot_every` (rem.training.snapshot)
        media/          reconstructions/ and episodes/ (rem.training.media), recordings/
                        (`rem play`)
        failures.json   health stops, kept across attempts
        scores.json     the final evaluation
        COMPLETED       written last: the run is complete

A re-evaluation of a run (the workflow's `evaluation.episodes`) goes to
`<evaluations>/<variant>/<game>/<seed>.json` instead of the run folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
SNAPSHOTS = "snapshots"
MEDIA = "media"
FAILURES = "failures.json"
SCORES = "scores.json"
COMPLETED = "COMPLETED"
LOCK = ".lock"
# inside checkpoints/ and a checkpoint's folder
LATEST = "LATEST.json"
STATE = "state.pt"
REPLAY = "replay"
# inside media/
RECONSTRUCTIONS = "reconstructions"
EPISODES = "episodes"
RECORDINGS = "recordings"  # videos recorded in `rem play`


class RunKey(NamedTuple):
    """One run of a sweep; a tuple, so `for variant, game, seed in runs` reads it too."""

    variant: str
    game: str
    seed: int

    def __str__(self) -> str:
        return f"{self.variant}/{self.game}/{self.seed}"


def run_dir_text(runs_dir: str | Path, variant: str, game: str, seed: int | str) -> str:
    """The run folder as text, `runs_dir` kept as given (Snakemake compares paths as text)."""
    return f"{runs_dir}/{variant}/{game}/{seed}"


def run_path(runs_dir: str | Path, key: RunKey) -> Path:
    """The folder of the run `key` under `runs_dir`."""
    return Path(runs_dir) / key.variant / key.game / str(key.seed)


def checkpoints_dir(run_dir: str | Path) -> Path:
    """The folder of a run's committed checkpoints (what rem.training.checkpoint reads)."""
    return Path(run_dir) / CHECKPOINTS


def run_of_state(state: str | Path) -> Path:
    """The run folder that holds the state file `state`: RUN/checkpoints/<name>/state.pt,
    else (a copied state file) the file's own folder."""
    state = Path(state)
    return state.parents[2] if state.parent.parent.name == CHECKPOINTS else state.parent


def evaluation_file(evaluations: str | Path, key: RunKey) -> Path:
    """The re-evaluation of a run (`rem evaluate --checkpoint`) in the workflow's layout."""
    return Path(evaluations) / key.variant / key.game / f"{key.seed}.json"


def score_file(runs_dir: str | Path, key: RunKey, evaluations: str | Path | None = None) -> Path:
    """A run's final scores: its re-evaluation when `evaluations` is given, else the
    trainer's own scores.json."""
    if evaluations is not None:
        return evaluation_file(evaluations, key)
    return run_path(runs_dir, key) / SCORES


def discover(runs_dir: str | Path) -> tuple[list[tuple[RunKey, Path]], list[str]]:
    """Run folders RUNS_DIR/<variant>/<game>/<seed>/ (with any run file), and problems."""
    found, problems = [], []
    try:
        variants = sorted(os.scandir(runs_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    for v in variants:
        if not v.is_dir() or v.name.startswith("."):
            continue
        for g in sorted(os.scandir(v.path), key=lambda e: e.name):
            if not g.is_dir() or g.name.startswith("."):
                continue
            for s in sorted(os.scandir(g.path), key=lambda e: e.name):
                if s.is_dir() and s.name.isdigit():
                    found.append((RunKey(v.name, g.name, int(s.name)), Path(s.path)))
                elif s.is_dir():
                    problems.append(
                        f"{s.path}: not a run folder (expected <variant>/<game>/<seed number>)"
                    )
    return found, problems
