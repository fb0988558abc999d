"""Settings of the results stage: the `results:` section of the workflow config.

    results:
      published_dir: results/published   # score files shipped with the project
      baselines_extra: [DIAMOND]         # each NAME reads <published_dir>/extra/NAME.json
      seed: 0
      reps_aggregates: 50000             # the paper's bootstrap repetitions
      reps_profiles: 2000
      reps_improvement: 1000
      seed_plan_reps: 20000              # seed planner: bootstrap experiments per row
      seed_check_experiments: 200        # its direct-simulation check: synthetic experiments
      seed_check_reps: 1000              #   and the bootstrap repetitions of each

Every key is optional; the defaults are the paper's protocol without extra baselines.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rem.games import ABLATION_GAMES
from rem.results.reports.studies import extra_file
from rem.runs.sweep import read_yaml_mapping

# The paper's bootstrap repetitions (results.py, ablation_results.py).
PAPER_REPS_AGGREGATES = 50_000
PAPER_REPS_PROFILES = 2_000
PAPER_REPS_IMPROVEMENT = 1_000

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class ResultsConfigError(ValueError):
    """A `results:` setting is malformed; the message names the key and the fix."""


@dataclass
class ResultsConfig:
    published_dir: str = "results/published"
    baselines_extra: list[str] = field(default_factory=list)
    seed: int = 0
    reps_aggregates: int = PAPER_REPS_AGGREGATES
    reps_profiles: int = PAPER_REPS_PROFILES
    reps_improvement: int = PAPER_REPS_IMPROVEMENT
    ablation_games: list[str] = field(default_factory=lambda: list(ABLATION_GAMES))
    seed_plan_reps: int = 20_000
    seed_check_experiments: int = 200
    seed_check_reps: int = 1000

    def __post_init__(self) -> None:
        for key in ("seed", "reps_aggregates", "reps_profiles", "reps_improvement",
                    "seed_plan_reps", "seed_check_experiments", "seed_check_reps"):  # fmt: skip
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ResultsConfigError(f"results.{key}: expected an integer, got {value!r}")
            if key != "seed" and value < 1:
                raise ResultsConfigError(f"results.{key}: must be >= 1, got {value}")
        if not isinstance(self.baselines_extra, list):
            raise ResultsConfigError(
                f"results.baselines_extra: expected a list of names, got {self.baselines_extra!r}"
            )
        for name in self.baselines_extra:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ResultsConfigError(
                    f"results.baselines_extra: {name!r} is not a valid baseline name (letters, "
                    "digits, '_', '.', '+', '-'); it names <published_dir>/extra/<NAME>.json"
                )
        if len(set(self.baselines_extra)) != len(self.baselines_extra):
            raise ResultsConfigError(
                f"results.baselines_extra: duplicate names in {self.baselines_extra}"
            )

    def extra_path(self, name: str) -> Path:
        return Path(self.published_dir) / extra_file(name)


def results_config_from_dict(data: dict[str, Any] | None, source: str = "config") -> ResultsConfig:
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(ResultsConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ResultsConfigError(
            f"{source}: unknown key(s) results.{', results.'.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    return ResultsConfig(**data)


def load_results_config(path: str | Path) -> ResultsConfig:
    """Read the `results:` section of a workflow config file (missing section = defaults)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsConfigError(
            f"config file {path} does not exist; pass the workflow config you run Snakemake "
            "with (e.g. --config config/config.yaml)"
        )
    doc = read_yaml_mapping(path, ResultsConfigError)
    section = doc.get("results") or {}
    if not isinstance(section, dict):
        raise ResultsConfigError(f"{path}: `results` must be a mapping")
    return results_config_from_dict(section, source=str(path))
