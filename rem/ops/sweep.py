"""The workflow config as the sweep's plan: which (variant, game, seed) runs it asks for.

The workflow (Snakefile, workflow/rules/common.smk) reads `config/config.yaml` and then each
`--configfile` on top (nested mappings merged, lists replaced), validates the result against
`workflow/schemas/config.schema.yaml` and expands every variant entry into games x seeds.
`load_sweep` does the same so that `rem status` / `rem plan` see exactly the workflow's runs;
the runs are expanded by rem.results.runs (RunKey, expected_runs), as for the reports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rem.results.runs import (
    RunKey,
    RunsConfigError,
    agent_preset,
    expected_runs,
    merge_config,
    variant_agent,
)
from rem.utils.paths import repo_root

ROOT = repo_root()
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

# libyaml's parser when PyYAML has it: `rem status` parses the config and the schema each time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SweepError(ValueError):
    """The workflow config cannot be used; the message names the file or key and the fix."""


@dataclass
class Sweep:
    """A workflow config resolved into its runs and where their files go."""

    sources: list[str]  # the config files merged, in order
    config: dict[str, Any]
    runs: list[RunKey]  # in the workflow's order (variants, games, seeds)
    variants: dict[str, dict[str, Any]]  # name -> {games, seeds, overrides, agent, preset}
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


def expand_runs(cfg: dict[str, Any]) -> tuple[list[RunKey], dict[str, dict[str, Any]]]:
    """Every (variant, game, seed) of a validated config, in the workflow's order (the
    expansion of rem.results.runs.expected_runs, which the reports use too), and per variant
    its games, seeds, overrides, agent and the agent's preset."""
    try:
        runs = expected_runs(cfg, "workflow config")
    except RunsConfigError as err:
        raise SweepError(str(err)) from err
    variants = {}
    for entry in cfg["variants"]:
        mine = [k for k in runs if k.variant == entry["name"]]
        variants[entry["name"]] = {
            "games": list(dict.fromkeys(k.game for k in mine)),
            "seeds": list(dict.fromkeys(k.seed for k in mine)),
            "overrides": list(entry.get("overrides", [])),
            "agent": variant_agent(entry),
        }
        try:
            variants[entry["name"]]["preset"] = agent_preset(cfg, variant_agent(entry))
        except RunsConfigError as err:
            raise SweepError(str(err)) from err
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
        cfg = merge_config(cfg, _read(path))
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


def variant_preset(sweep: Sweep, variant: str) -> str:
    """The preset of a variant's runs: its agent's (`agents.<agent>.preset`, REM: `preset`)."""
    return str(sweep.variants[variant].get("preset", sweep.preset))


def variant_epochs(sweep: Sweep, variant: str) -> int:
    """run.epochs of a variant's runs (preset -> variant file -> overrides, as `rem train`)."""
    if variant not in sweep.epochs:
        from rem.config import ConfigError, load_config

        try:
            cfg = load_config(
                variant_preset(sweep, variant), variant, sweep.variants[variant]["overrides"]
            )
        except ConfigError as err:
            raise SweepError(f"variant {variant}: {err}") from err
        sweep.epochs[variant] = cfg.run.epochs
    return sweep.epochs[variant]
