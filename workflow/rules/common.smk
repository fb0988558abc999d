# Config checking and the run table shared by every rule.
#
# Everything here runs at parse time, before any job starts: a config mistake (unknown game,
# variant without an override file, override key that does not exist, seeds that are not a
# list of ints) stops the workflow with a message that names the key and the fix.

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rem.config import ConfigError, available, load_config
from rem.results.settings import ResultsConfigError, results_config_from_dict
from rem.results.reports.studies import cli_flags

# The run folder and sweep contract (rem.runs): the same expansion of the config into runs,
# the same run folders and file names as `rem status`, `rem plan` and the reports.
from rem.runs.files import is_finished
from rem.runs.layout import COMPLETED, SCORES, run_dir_text
from rem.runs.sweep import (
    SweepError,
    agent_preset,
    agent_resources,
    check_games,
    expected_runs,
    schema_errors,
    variant_agent,
)


envvars:
    "PATH",


# Jobs call `rem` by name. The interpreter running Snakemake has `rem` installed (a
# dependency of the project), so its bin folder goes first on PATH: this works without an
# activated virtual environment, and on SLURM nodes too (the executor submits with
# --export=ALL).
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
)
# The software environment of every rule (used with --sdm conda).
ENV_FILE = "../../environment.yml"


def _key(path):
    """jsonschema path -> `variants[2].games` (how a user finds the key in the YAML)."""
    text = ""
    for part in path:
        text += (
            f"[{part}]"
            if isinstance(part, int)
            else (f".{part}" if text else str(part))
        )
    return text or "(top level)"


def _hint(schema, error):
    """The nearest `description` on the schema path of an error: the fix to print."""
    node, hints = schema, [schema.get("description")]
    for part in error.absolute_schema_path:
        if isinstance(node, dict) and "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and node.get("description"):
            hints.append(node["description"])
    return " ".join(hints[-1].split())


def check_config(cfg, schema_path):
    """Validate the merged config against the JSON schema and fill in the schema's defaults
    (snakemake.utils.validate). A mistake stops the workflow with every wrong key, each with
    the fix the schema describes."""
    try:
        validate(cfg, schema_path, set_default=True)
    except WorkflowError:
        raise WorkflowError(config_errors(cfg, schema_path)) from None


def config_errors(cfg, schema_path):
    """Every schema violation of `cfg`, one key and its fix per entry (the message of a
    failed `check_config`)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    lines = []
    for err in schema_errors(cfg, schema):
        # `oneOf` failures are clearer as the single branch that matches the value's type.
        best = jsonschema.exceptions.best_match([err])
        if best.validator == "additionalProperties":
            fix = f"remove it; the keys allowed here are {', '.join(best.schema['properties'])}"
        else:
            fix = _hint(schema, best)
        lines.append(
            f"  config key {_key(best.absolute_path)}: {best.message}\n    fix: {fix}"
        )
    return (
        "invalid workflow config (config/config.yaml plus any --configfile/--config):\n"
        + "\n".join(lines)
    )


@dataclass(frozen=True)
class Variant:
    name: str
    games: tuple
    seeds: tuple
    overrides: tuple
    agent: str = "rem"  # the entry's `agent:` (rem.config.AGENTS)
    preset: str = ""  # the agent's preset (agents.<agent>.preset, else `preset`)


def resolve_variants(cfg):
    """Config entries -> Variant records; resolves game sets and checks every override.

    `rem.config.load_config(preset, variant, overrides)` is the same call `rem train` makes, so
    a variant file or override that it would reject stops the workflow here instead.
    """
    variants, problems = {}, []
    for i, entry in enumerate(cfg["variants"]):
        where = f"variants[{i}] (name: {entry['name']})"
        if entry["name"] in variants:
            problems.append(
                f"  {where}: variant listed twice; merge the two entries into one"
            )
            continue
        checked, errors = check_games(entry["games"])
        problems += [f"  {where}.games: {err}" for err in errors]
        overrides = tuple(entry.get("overrides", []))
        agent = variant_agent(entry)
        try:
            preset = agent_preset(cfg, agent)
        except SweepError as err:
            problems.append(f"  {where}: {err}")
            continue
        try:
            loaded = load_config(preset, entry["name"], overrides)
            if loaded.agent != agent:
                raise ConfigError(
                    f"preset {preset} and variant {entry['name']} make an agent "
                    f"{loaded.agent} run, but the entry says agent: {agent}"
                )
        except ConfigError as err:
            if entry["name"] not in available("variants"):
                fix = (
                    f"create config/variants/{entry['name']}.yaml (README: Add an ablation) "
                    "or fix the name"
                )
            else:
                fix = (
                    f"correct the key in config/variants/{entry['name']}.yaml, in this "
                    "entry's overrides or in the preset"
                )
            problems.append(f"  {where}: {err}\n    fix: {fix}")
        variants[entry["name"]] = Variant(
            name=entry["name"],
            games=tuple(checked),
            seeds=tuple(entry.get("seeds", cfg["seeds"])),
            overrides=overrides,
            agent=agent,
            preset=preset,
        )
    if problems:
        raise WorkflowError(
            "invalid workflow config (config/config.yaml plus any --configfile/--config):\n"
            + "\n".join(problems)
        )
    return variants


def runs(cfg):
    """Every (variant, game, seed) the config asks for, in the workflow's order (rem.runs:
    the expansion `rem status`, `rem plan` and the reports use); each a RunKey tuple."""
    return expected_runs(cfg, "workflow config")


def variant_of(wildcards):
    """The config entry of a job's variant; a target outside the config is an error."""
    variant = VARIANTS.get(wildcards.variant)
    if variant is None or wildcards.game not in variant.games:
        raise WorkflowError(
            f"{wildcards.variant}/{wildcards.game} is not in the workflow config; add the "
            "variant/game to `variants` in config/config.yaml (or your --configfile)"
        )
    if int(wildcards.seed) not in variant.seeds:
        raise WorkflowError(
            f"seed {wildcards.seed} is not configured for variant {wildcards.variant}; add it to "
            "`seeds` in config/config.yaml (or your --configfile)"
        )
    return variant


def run_dir(variant, game, seed):
    return run_dir_text(RUNS_DIR, variant, game, seed)


def completed_marker(variant, game, seed):
    """The run's COMPLETED marker: what a training job outputs (wildcards or values)."""
    return f"{run_dir(variant, game, seed)}/{COMPLETED}"


def score_file(variant, game, seed):
    """The trainer's RUN_DIR/scores.json, or the re-evaluation when evaluation.episodes is set."""
    if config["evaluation"]["episodes"]:
        return f"{RESULTS_DIR}/evaluations/{variant}/{game}/{seed}.json"
    return f"{run_dir(variant, game, seed)}/{SCORES}"


def published_dir():
    """The published scores: results.published_dir if set, else the ones shipped with the
    repository (relative to the working directory, so also under --directory). The one
    definition for every rule."""
    default = os.path.relpath(os.path.join(workflow.basedir, "results", "published"))
    return config["results"].get("published_dir", default)


def results_settings():
    """The config's `results:` section (the schema fills in `{}`) with the published folder
    of published_dir(), checked by rem.results.settings at parse time like the variant
    overrides. What the report, collect and paper rules pass to rem.results."""
    section = {**config["results"], "published_dir": published_dir()}
    try:
        results_config_from_dict(section, source="workflow config")
    except ResultsConfigError as err:
        raise WorkflowError(f"invalid workflow config: {err}")
    return section


def results_flags():
    """Flags of `python -m rem.results report` from results_settings() (the same translation
    as the paper rules', rem.results.reports.studies.cli_flags)."""
    return cli_flags(results_settings(), profiles=False)


def configured_resource(rule_name, key):
    """A job resource of `rule_name` from the config's `resources:` (defaults in the schema)."""
    return config["resources"][rule_name][key]


def agent_resource(rule_name, key):
    """A job resource of `rule_name` for the agent of a job's variant: its
    `agents.<agent>.resources` over the config's `resources:` (a function of the wildcards).
    """

    def get(wildcards, **_):
        agent = VARIANTS[wildcards.variant].agent
        return agent_resources(config, agent, rule_name)[key]

    return get


def script_path(name):
    """A helper script of workflow/scripts, shell-quoted, for a rule's shell command."""
    return shlex.quote(str(Path(workflow.basedir) / "workflow" / "scripts" / name))


def packing_mode(cfg):
    """Several training runs per GPU, from the config's `packing` (README: several runs per
    GPU): (K, jobs). jobs "per-run": one job per run, pinned by with_gpu.py to one of K slots
    of a GPU (a workstation, train.smk); "per-gpu": one job trains K runs on its GPU (SLURM:
    K runs inside one sbatch job, train_pack.smk)."""
    k, jobs = cfg["packing"]["runs_per_gpu"], cfg["packing"]["jobs"]
    gpus = cfg["resources"]["train"]["gpu"]
    if k > 1 and gpus > 1:
        raise WorkflowError(
            f"invalid workflow config: packing.runs_per_gpu {k} shares one GPU between runs, "
            f"but resources.train.gpu is {gpus}; set it to 1"
        )
    return k, jobs


def gpu_slots():
    """Slots per GPU of Snakemake's `gpu` resource: K when runs share GPUs job by job, else 1."""
    k, jobs = packing_mode(config)
    return (
        k
        if k > 1 and jobs == "per-run" and configured_resource("train", "gpu") == 1
        else 1
    )


# The preliminary report (workflow/rules/report.smk).
def finished_score_files(wildcards):
    return [f"{run_dir(*key)}/{SCORES}" for key in RUNS if is_finished(RUNS_DIR, key)]


# The learning benchmark (workflow/rules/learning.smk).
def learning_setting(key):
    """A key of the config's `learning:` section (its defaults come from the schema)."""
    return config["learning"][key]


def variant_files(variant, pattern):
    """`pattern` filled in for every run of one variant ({runs}, {results}, {v}, {g}, {s})."""
    return [
        pattern.format(runs=RUNS_DIR, results=RESULTS_DIR, v=v, g=g, s=s)
        for v, g, s in RUNS
        if v == variant
    ]


wildcard_constraints:
    variant="[A-Za-z0-9][A-Za-z0-9_.-]*",
    game="[A-Za-z]+",
    seed="[0-9]+",
