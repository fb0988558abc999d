"""A workflow config as a sweep: loaded, merged, validated and expanded into its runs.

The workflow (Snakefile, workflow/rules/common.smk) reads `config/config.yaml` and then each
`--configfile` on top (nested mappings merged, lists replaced), validates the result against
`workflow/schemas/config.schema.yaml` and expands every variant entry into games x seeds.
`expected_runs` is that expansion, the one for the Snakefile's RUNS, `rem status`, `rem plan`
and the reports; `load_sweep` does the whole sequence so that `rem status` / `rem plan` see
exactly the workflow's runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rem.games import GAME_SETS, UnknownGameError, check_game
from rem.runs.layout import RunKey
from rem.utils.paths import project_root, repo_root

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
        raise SweepError(f"{path}: workflow config not found")
    return merge_config(base or {}, read_yaml_mapping(path, SweepError))


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
    raise SweepError(
        f"agent {agent} has no preset: add `agents: {{{agent}: {{preset: ...}}}}` to the "
        "workflow config (README: Add an agent)"
    )


def agent_resources(cfg: dict[str, Any], agent: str, rule: str) -> dict[str, Any]:
    """Job resources of `rule` for `agent`'s runs: `agents.<agent>.resources.<rule>` over
    the top-level `resources.<rule>` (key by key)."""
    base = dict((cfg.get("resources") or {}).get(rule) or {})
    own = (((cfg.get("agents") or {}).get(agent) or {}).get("resources") or {}).get(rule) or {}
    return {**base, **own}


def check_games(games: str | list[str]) -> tuple[list[str], list[str]]:
    """A variant entry's `games` (a list, or the name of a set of rem.games.GAME_SETS) ->
    (canonical names of the known games, one error per unknown game)."""
    if isinstance(games, str):
        games = GAME_SETS[games]
    checked, errors = [], []
    for game in games:
        try:
            checked.append(check_game(game))
        except UnknownGameError as err:
            errors.append(str(err))
    return checked, errors


def expected_runs(cfg: dict[str, Any], source: str = "config") -> list[RunKey]:
    """Every (variant, game, seed) a workflow config asks for, in the workflow's order
    (variants, games, seeds: the Snakefile's RUNS); games canonical (rem.games)."""
    variants = cfg.get("variants")
    if not isinstance(variants, list) or not variants:
        raise SweepError(f"{source}: `variants` missing or empty; list the variants to expect")
    out = []
    for i, entry in enumerate(variants):
        if not isinstance(entry, dict) or "name" not in entry or "games" not in entry:
            raise SweepError(f"{source}: variants[{i}] needs `name` and `games`")
        games = entry["games"]
        if isinstance(games, str) and games not in GAME_SETS:
            raise SweepError(
                f"{source}: variants[{i}].games: unknown set {games!r}; use "
                f"{' or '.join(GAME_SETS)} or a list of games"
            )
        seeds = entry.get("seeds", cfg.get("seeds"))
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise SweepError(f"{source}: seeds of variants[{i}] must be a list of ints")
        checked, errors = check_games(games)
        if errors:
            raise SweepError(f"{source}: variants[{i}].games: {errors[0]}")
        out += [RunKey(str(entry["name"]), game, int(s)) for game in checked for s in seeds]
    return out


def parse_run_keys(items: list[str]) -> list[RunKey]:
    """'variant:game:seed' strings (the workflow passes its runs this way)."""
    out = []
    for item in items:
        parts = item.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise SweepError(f"--expected {item!r}: expected VARIANT:GAME:SEED")
        out.append(RunKey(parts[0], parts[1], int(parts[2])))
    return out


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


def schema_errors(cfg: dict[str, Any], schema: dict[str, Any]) -> list:
    """Every violation of the workflow's JSON schema by `cfg` (jsonschema errors), in the
    order of the keys; the workflow and `rem status` word them each their own way."""
    import jsonschema

    return sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: [str(p) for p in e.absolute_path],
    )


def fill_defaults(cfg: dict[str, Any], schema: dict[str, Any]) -> None:
    """The schema's defaults of the top-level keys and of their sub-keys, in place."""
    for key, sub in schema["properties"].items():
        if "default" in sub:
            cfg.setdefault(key, copy.deepcopy(sub["default"]))
        if sub.get("type") == "object" and "properties" in sub and isinstance(cfg.get(key), dict):
            for inner, inner_sub in sub["properties"].items():
                if "default" in inner_sub:
                    cfg[key].setdefault(inner, copy.deepcopy(inner_sub["default"]))


def validate(cfg: dict[str, Any], schema_path: Path = SCHEMA) -> None:
    """The workflow's JSON schema (and its defaults); the first error as one line."""
    import jsonschema

    schema = yaml.load(schema_path.read_text(), Loader=_LOADER)  # noqa: S506 - a safe loader
    errors = schema_errors(cfg, schema)
    if errors:
        err = jsonschema.exceptions.best_match([errors[0]])
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise SweepError(
            f"invalid workflow config: key {key}: {err.message} (every key is documented in "
            "workflow/schemas/config.schema.yaml)"
        )
    fill_defaults(cfg, schema)


def expand_runs(cfg: dict[str, Any]) -> tuple[list[RunKey], dict[str, dict[str, Any]]]:
    """Every (variant, game, seed) of a validated config, in the workflow's order
    (`expected_runs`), and per variant its games, seeds, overrides, agent and the agent's
    preset."""
    runs = expected_runs(cfg, "workflow config")
    variants = {}
    for entry in cfg["variants"]:
        mine = [k for k in runs if k.variant == entry["name"]]
        variants[entry["name"]] = {
            "games": list(dict.fromkeys(k.game for k in mine)),
            "seeds": list(dict.fromkeys(k.seed for k in mine)),
            "overrides": list(entry.get("overrides", [])),
            "agent": variant_agent(entry),
            "preset": agent_preset(cfg, variant_agent(entry)),
        }
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
