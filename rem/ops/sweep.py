"""The workflow config as the sweep's plan: which (variant, game, seed) runs it asks for.

The workflow (Snakefile, workflow/rules/common.smk) reads `config/config.yaml` and then each
`--configfile` on top (nested mappings merged, lists replaced), validates the result against
`workflow/schemas/config.schema.yaml` and expands every variant entry into games x seeds.
`load_sweep` does the same so that `rem status` / `rem plan` see exactly the workflow's runs;
The named game sets are `rem.games.GAME_SETS`, which common.smk imports too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from rem.games import GAME_SETS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

# libyaml's parser when PyYAML has it: `rem status` parses the config and the schema each time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SweepError(ValueError):
    """The workflow config cannot be used; the message names the file or key and the fix."""


class RunKey(NamedTuple):
    variant: str
    game: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.game}/{self.seed}"


@dataclass
class Sweep:
    """A workflow config resolved into its runs and where their files go."""

    sources: list[str]  # the config files merged, in order
    config: dict[str, Any]
    runs: list[RunKey]  # in the workflow's order (variants, games, seeds)
    variants: dict[str, dict[str, Any]]  # name -> {games, seeds, overrides}
    runs_dir: Path
    logs_dir: Path
    preset: str
    epochs: dict[str, int] = field(default_factory=dict)  # variant -> run.epochs

    @property
    def gpus_per_train_job(self) -> int:
        return int(self.config.get("resources", {}).get("train", {}).get("gpu", 0))

    @property
    def runs_per_gpu(self) -> int:
        return int((self.config.get("packing") or {}).get("runs_per_gpu", 1))

    @property
    def gpu_share_per_run(self) -> float:
        """GPUs one run occupies: resources.train.gpu, divided by runs_per_gpu when packed."""
        gpus = self.gpus_per_train_job
        return gpus / self.runs_per_gpu if gpus == 1 else float(gpus)


def display_path(path: str | Path) -> str:
    """A path as the user knows it: one inside this checkout relative to the checkout."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's config merge: nested mappings merged key by key, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SweepError(
            f"config file {path} does not exist; pass the workflow config you run Snakemake "
            "with (e.g. --configfile config/quick.yaml)"
        )
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SweepError(f"{path} is not valid YAML{where}; fix the file") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SweepError(f"{path} must be a YAML mapping of workflow keys (see config/config.yaml)")
    return data


def validate(cfg: dict[str, Any], schema_path: Path = SCHEMA) -> None:
    """The workflow's JSON schema (and its defaults); the first error as one line."""
    import jsonschema

    schema = yaml.load(schema_path.read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if errors:
        err = jsonschema.exceptions.best_match([errors[0]])
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise SweepError(
            f"invalid workflow config: key {key}: {err.message} (every key is documented in "
            "workflow/schemas/config.schema.yaml)"
        )
    for key, sub in schema["properties"].items():
        if "default" in sub:
            cfg.setdefault(key, copy.deepcopy(sub["default"]))
        if sub.get("type") == "object" and "properties" in sub and isinstance(cfg.get(key), dict):
            for inner, inner_sub in sub["properties"].items():
                if "default" in inner_sub:
                    cfg[key].setdefault(inner, copy.deepcopy(inner_sub["default"]))


def variant_games(entry: dict[str, Any]) -> list[str]:
    """A variant entry's games: a named set or a list (names checked by the schema)."""
    games = entry["games"]
    return list(GAME_SETS[games]) if isinstance(games, str) else list(games)


def expand_runs(cfg: dict[str, Any]) -> tuple[list[RunKey], dict[str, dict[str, Any]]]:
    """Every (variant, game, seed) of a validated config, in the workflow's order."""
    from rem.games import UnknownGameError, check_game

    runs, variants = [], {}
    for entry in cfg["variants"]:
        try:
            games = [check_game(g) for g in variant_games(entry)]
        except UnknownGameError as err:
            raise SweepError(f"variant {entry['name']}: {err}") from err
        seeds = [int(s) for s in entry.get("seeds", cfg["seeds"])]
        variants[entry["name"]] = {
            "games": games,
            "seeds": seeds,
            "overrides": list(entry.get("overrides", [])),
        }
        runs += [RunKey(entry["name"], g, s) for g in games for s in seeds]
    return runs, variants


def load_sweep(configfiles: list[str | Path] | None = None) -> Sweep:
    """config/config.yaml, then each configfile on top, as `snakemake --configfile` does."""
    paths = [DEFAULT_CONFIG] if DEFAULT_CONFIG.is_file() else []
    paths += [Path(p) for p in configfiles or []]
    if not paths:
        raise SweepError(
            f"no workflow config: {DEFAULT_CONFIG} is missing; pass --configfile CONFIG"
        )
    cfg: dict[str, Any] = {}
    for path in paths:
        _merge(cfg, _read(path))
    validate(cfg)
    runs, variants = expand_runs(cfg)
    return Sweep(
        sources=[str(p) for p in paths],
        config=cfg,
        runs=runs,
        variants=variants,
        runs_dir=Path(cfg["runs_dir"]),
        logs_dir=Path(cfg["logs_dir"]),
        preset=str(cfg["preset"]),
    )


def variant_epochs(sweep: Sweep, variant: str) -> int:
    """run.epochs of a variant's runs (preset -> variant file -> overrides, as `rem train`)."""
    if variant not in sweep.epochs:
        from rem.config import ConfigError, load_config

        try:
            cfg = load_config(sweep.preset, variant, sweep.variants[variant]["overrides"])
        except ConfigError as err:
            raise SweepError(f"variant {variant}: {err}") from err
        sweep.epochs[variant] = cfg.run.epochs
    return sweep.epochs[variant]
