"""The pipeline's own runs: expected runs of a workflow config, finished runs, their scores.

Used by the collect rule (workflow/scripts/collect_scores.py) and by the preliminary report
(`rem results report --partial`), which aggregates whatever runs have finished: a run counts
as finished when its folder holds the `COMPLETED` marker and its score file (the trainer's
`RUN_DIR/scores.json`, or the re-evaluation `<evaluations>/<variant>/<game>/<seed>.json`
when the workflow re-evaluates). Nothing here waits for a run or writes to a run folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rem.games import GAME_SETS, UnknownGameError, check_game
from rem.results.paths import project_root

if TYPE_CHECKING:  # pandas and numpy load on use: `rem status` reads RunKey and the config
    import pandas as pd

    from rem.results.scores import References


class ScoreError(ValueError):
    """A run's score file cannot be used; the message names the file and the fix."""


class RunsConfigError(ValueError):
    """A workflow config cannot say which runs are expected; the message names the key."""


@dataclass(frozen=True, order=True)
class RunKey:
    """One run of a sweep (the one definition; `rem status` and `rem plan` use it too)."""

    variant: str
    game: str
    seed: int

    def __str__(self) -> str:
        return f"{self.variant}/{self.game}/{self.seed}"


def read_score(path: Path, variant: str, game: str, seed: int) -> tuple[float, int]:
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
    for key, got, want in (
        ("game", data.get("game"), game),
        ("variant", data.get("variant"), variant),
        ("seed", run_seed, seed),
    ):
        if got is not None and got != want:
            raise ScoreError(f"{path}: {key} is {got!r} but the run is {want!r}")
    return raw, len(returns)


# The tidy score table of the workflow (`collect` rule) and of the preliminary report.
TIDY_COLUMNS = ("variant", "game", "seed", "raw_score", "hns", "episodes")


def score_table(runs: Iterable[tuple[str, str, int, str | Path]], refs: References) -> pd.DataFrame:
    """One row per run, from (variant, game, seed, score file): the TIDY_COLUMNS, sorted by
    variant, game and seed. `raw_score` is the mean return of the run's final evaluation
    episodes; `hns` its human-normalised score with `refs`. ScoreError names a bad file."""
    import pandas as pd

    rows = []
    for variant, game, seed, path in runs:
        raw, episodes = read_score(Path(path), variant, game, int(seed))
        rows.append((variant, game, int(seed), raw, float(refs.hns(game, raw)), episodes))
    table = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return table.sort_values(["variant", "game", "seed"], ignore_index=True)


def table_csv(table: pd.DataFrame) -> str:
    """CSV text of a table, floats at full precision (repr), no index."""
    return table.to_csv(index=False, lineterminator="\n")


def read_yaml_mapping(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; anything else raises `error` naming the file."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict):
        raise error(f"{path}: top level must be a mapping")
    return doc


def merge_config(base: dict, top: dict) -> dict:
    """Snakemake's merge of config files (`--configfile` on top of config/config.yaml):
    mappings merge recursively, the rest is replaced; a new dict, the inputs unchanged."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def load_workflow_config(path: str | Path | None) -> dict[str, Any]:
    """config/config.yaml of the project, with `path` merged over it as `--configfile` does."""
    base_path = project_root() / "config" / "config.yaml"
    base = yaml.safe_load(base_path.read_text()) if base_path.is_file() else {}
    if path is None:
        return base or {}
    path = Path(path)
    if not path.is_file():
        raise RunsConfigError(f"{path}: workflow config not found")
    return merge_config(base or {}, read_yaml_mapping(path, RunsConfigError))


def variant_agent(entry: dict[str, Any]) -> str:
    """The agent of a workflow variant entry (`agent:`, default rem)."""
    return str(entry.get("agent", "rem"))


def agent_preset(cfg: dict[str, Any], agent: str) -> str:
    """The preset of `agent`'s runs: `agents.<agent>.preset`, else the top-level `preset`
    for rem; another agent must name its own (REM's sizes are not its)."""
    own = ((cfg.get("agents") or {}).get(agent) or {}).get("preset")
    if own is not None:
        return str(own)
    if agent == "rem":
        return str(cfg["preset"])
    raise RunsConfigError(
        f"agent {agent} has no preset: add `agents: {{{agent}: {{preset: ...}}}}` to the "
        "workflow config (README: Add an agent)"
    )


def agent_resources(cfg: dict[str, Any], agent: str, rule: str) -> dict[str, Any]:
    """Job resources of `rule` for `agent`'s runs: `agents.<agent>.resources.<rule>` over
    the top-level `resources.<rule>` (key by key)."""
    base = dict((cfg.get("resources") or {}).get(rule) or {})
    own = (((cfg.get("agents") or {}).get(agent) or {}).get("resources") or {}).get(rule) or {}
    return {**base, **own}


def expected_runs(cfg: dict[str, Any], source: str = "config") -> list[RunKey]:
    """Every (variant, game, seed) a workflow config asks for, in the workflow's order
    (variants, games, seeds: the Snakefile's RUNS); games canonical (rem.games)."""
    variants = cfg.get("variants")
    if not isinstance(variants, list) or not variants:
        raise RunsConfigError(f"{source}: `variants` missing or empty; list the variants to expect")
    top_seeds = cfg.get("seeds")
    out = []
    for i, entry in enumerate(variants):
        if not isinstance(entry, dict) or "name" not in entry or "games" not in entry:
            raise RunsConfigError(f"{source}: variants[{i}] needs `name` and `games`")
        games = entry["games"]
        if isinstance(games, str):
            if games not in GAME_SETS:
                raise RunsConfigError(
                    f"{source}: variants[{i}].games: unknown set {games!r}; use "
                    f"{' or '.join(GAME_SETS)} or a list of games"
                )
            games = GAME_SETS[games]
        seeds = entry.get("seeds", top_seeds)
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise RunsConfigError(f"{source}: seeds of variants[{i}] must be a list of ints")
        for game in games:
            try:
                game = check_game(game)
            except UnknownGameError as err:
                raise RunsConfigError(f"{source}: variants[{i}].games: {err}") from None
            out += [RunKey(str(entry["name"]), game, int(s)) for s in seeds]
    return out


def parse_run_keys(items: Iterable[str]) -> list[RunKey]:
    """'variant:game:seed' strings (the workflow passes its RUNS this way)."""
    out = []
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise RunsConfigError(f"--expected {item!r}: expected VARIANT:GAME:SEED")
        out.append(RunKey(parts[0], parts[1], int(parts[2])))
    return out


@dataclass(frozen=True)
class Finished:
    key: RunKey
    run_dir: Path
    score_file: Path


def score_file(runs_dir: Path, key: RunKey, evaluations: Path | None) -> Path:
    if evaluations is not None:
        return evaluations / key.variant / key.game / f"{key.seed}.json"
    return runs_dir / key.variant / key.game / str(key.seed) / "scores.json"


def finished_runs(
    runs_dir: Path, expected: list[RunKey], evaluations: Path | None = None
) -> list[Finished]:
    """The expected runs whose COMPLETED marker and score file both exist (no waiting)."""
    out = []
    for key in expected:
        run_dir = runs_dir / key.variant / key.game / str(key.seed)
        path = score_file(runs_dir, key, evaluations)
        if (run_dir / "COMPLETED").is_file() and path.is_file():
            out.append(Finished(key, run_dir, path))
    return out
