"""The studies: which published files each one reads and which files it writes.

One definition shared by the code and the Snakemake rules (workflow/rules/paper.smk), kept
free of heavy imports so that the workflow can import it at parse time.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from rem.config import AGENTS

REFERENCE = "REM"
REFERENCE_FILES = ("RANDOM.json", "HUMAN.json")


@dataclass(frozen=True)
class Algorithm:
    label: str
    file: str  # relative to the published folder
    colour: int  # index into seaborn's colorblind palette


def published_name(variant: str) -> str:
    """The published score file of a workflow variant, relative to the published folder: an
    agent's own variant (named as the agent, rem.config.AGENTS: rem -> REM.json, iris ->
    IRIS.json) or an ablation named as in config/variants/ (ablations/ablation-<name>.json)."""
    if variant in AGENTS:
        return AGENTS[variant].published
    return f"ablations/ablation-{variant}.json"


# The paper's main comparison, in its order and colours (the reference's results/results.py).
MAIN = (
    Algorithm("SimPLe", "SimPLe.json", 7),
    Algorithm("DreamerV3", "dreamerv3.json", 4),
    Algorithm("TWM", "TWM.json", 0),
    Algorithm("STORM", "STORM.json", 6),
    Algorithm("IRIS", "IRIS.json", 2),
    Algorithm("REM", published_name("rem"), 1),
)
EXTRA_COLOURS = (3, 5, 8, 9)  # palette entries the paper leaves free
# Ablations (the reference's results/ablation_results.py), one per variant of config/variants/.
ABLATIONS = (
    Algorithm("REM", published_name("rem"), 1),
    Algorithm("No POP", published_name("no-pop"), 0),
    Algorithm("Separate WM emb.", published_name("separate-wm-embeddings"), 2),
    Algorithm("4x4 tokenizer", published_name("4x4-tokenizer"), 3),
    Algorithm("No latent AC", published_name("no-latent-ac"), 4),
    Algorithm("AC w/o action inputs", published_name("no-action-input"), 5),
)


def cli_flags(settings: dict, *, profiles: bool = True) -> str:
    """The workflow's `results:` settings as flags of `python -m rem.results paper|report`.

    Only the keys that are set; the report takes all of them except reps_profiles.
    """
    flags = []
    keys = ["published_dir", "seed", "reps_aggregates", "reps_improvement"]
    keys += ["reps_profiles"] if profiles else []
    for key in keys:
        if settings.get(key) is not None:
            flags.append(f"--{key.replace('_', '-')} {shlex.quote(str(settings[key]))}")
    return " ".join(flags)


def seed_plan_flags(settings: dict) -> str:
    """The `results:` settings of `python -m rem.results plan-seeds` (only the keys set)."""
    keys = ["published_dir", "seed", "seed_plan_reps", "seed_check_experiments", "seed_check_reps"]
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(settings[key]))}"
        for key in keys
        if settings.get(key) is not None
    )


def extra_file(name: str) -> str:
    """Where an extra baseline NAME lives, relative to the published folder."""
    return f"extra/{name}.json"


def study_inputs(study: str, published_dir: str, baselines_extra: list[str] = ()) -> list[str]:
    """Published files a study reads; extras that do not exist are left out (reported later)."""
    pub = Path(published_dir)
    if study == "seeds":
        return [str(pub / f) for f in (*REFERENCE_FILES, published_name("rem"))]
    algos = MAIN if study == "main" else ABLATIONS
    files = [str(pub / f) for f in REFERENCE_FILES] + [str(pub / a.file) for a in algos]
    if study == "main":
        files += [
            str(pub / extra_file(n)) for n in baselines_extra if (pub / extra_file(n)).is_file()
        ]
    return files


FIGURE_FORMATS = ("png", "pdf")

MAIN_TABLES = (
    "aggregates.csv",
    "aggregates.md",
    "per_game.csv",
    "per_game.md",
    "per_game.tex",
    "probability_of_improvement.csv",
    "performance_profile.csv",
    "provenance.json",
    "protocols.md",
    "protocol_mismatches.csv",
)
MAIN_FIGURES = ("aggregates", "iqm", "performance_profile", "probability_of_improvement")

ABLATION_TABLES = (
    "ablations_aggregates.csv",
    "ablations_aggregates.md",
    "ablations_all_games_aggregates.csv",
    "ablations_per_game.csv",
    "ablations_per_game.md",
    "ablations_per_game.tex",
    "ablations_probability_of_improvement.csv",
    "ablations_performance_profile.csv",
    "ablations_provenance.json",
    "ablations_protocols.md",
    "ablations_protocol_mismatches.csv",
)
ABLATION_FIGURES = (
    "ablations_aggregates",
    "ablations_performance_profile",
    "ablations_probability_of_improvement",
    "ablations_summary",
)

REPORT_FILES = (
    "reproduction.md",
    "per_game.csv",
    "aggregates.csv",
    "probability_of_improvement.csv",
    "runs.csv",
    "protocols.md",
    "protocol_mismatches.csv",
)
REPORT_FIGURES = ("aggregates", "learning_curves")
# The preliminary report (`rem results report --partial`) adds the table of the runs it found
# finished and their coverage of the expected runs.
PARTIAL_FILES = REPORT_FILES + ("scores.csv", "coverage.csv")
# The seed planner (`rem results plan-seeds`), written next to the paper's files.
SEED_PLAN_FILES = ("seed_plan.csv", "seed_plan.md", "seed_plan_check.csv")


def figure_files(stems: tuple[str, ...]) -> list[str]:
    return [f"{stem}.{fmt}" for stem in stems for fmt in FIGURE_FORMATS]


def study_outputs(study: str) -> list[str]:
    """File names (relative to the output folder) that `study` writes."""
    if study == "main":
        return list(MAIN_TABLES) + figure_files(MAIN_FIGURES)
    if study == "ablations":
        return list(ABLATION_TABLES) + figure_files(ABLATION_FIGURES)
    if study == "report":
        return list(REPORT_FILES) + [f"{stem}.png" for stem in REPORT_FIGURES]
    if study == "partial":
        return list(PARTIAL_FILES) + [f"{stem}.png" for stem in REPORT_FIGURES]
    if study == "seeds":
        return list(SEED_PLAN_FILES) + figure_files(("seed_plan",))
    raise ValueError(f"unknown study {study!r}; expected main, ablations, report, partial or seeds")
