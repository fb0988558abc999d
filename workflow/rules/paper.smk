# The paper's tables and figures, regenerated from the published scores alone
# (rem/results). Needs no training run:
#
#   snakemake --cores 2 paper              # results/paper/ (add --forceall to redo them)
#
# One job (rule paper_files) runs the two studies and the seed planner (seed_plan.*) in
# processes forked after one shared import of the plotting stack (`python -m rem.results
# parallel`), each with its own log; the seed planner's direct-simulation check is read from
# SEED_CHECK_CACHE when the same runs, settings and code were simulated before.
#
# Settings: the optional `results:` section of the config (defaults = the paper's protocol):
#   results:
#     published_dir: results/published   # default: the repository's (common.smk, published_dir)
#     baselines_extra: [DIAMOND]   # NAME -> <published_dir>/extra/NAME.json joins the tables
#     seed: 0
#     reps_aggregates: 50000
#     reps_profiles: 2000
#     reps_improvement: 1000
#     ablation_games: [Assault, Asterix, ChopperCommand, CrazyClimber, DemonAttack, Gopher,
#                      Krull, RoadRunner]
# A name in baselines_extra whose file is absent is reported as missing (not an error).

import os
import shlex

from rem.results.reports.studies import (
    cli_flags,
    seed_plan_flags,
    study_inputs,
    study_outputs,
)

PAPER_DIR = "results/paper"
PAPER_LOGS = LOGS_DIR
# The seed planner's check, stored per key of its inputs
# (rem.results.reports.seed_plan.cached_check; committed, so the paper target does not
# simulate again; delete a file to redo it).
SEED_CHECK_CACHE = "results/cache/seed_check"
# The `results:` section with the published folder filled in (common.smk: one definition).
RESULTS_SETTINGS = results_settings()
PUBLISHED_DIR = RESULTS_SETTINGS["published_dir"]
BASELINES_EXTRA = [str(name) for name in RESULTS_SETTINGS.get("baselines_extra") or []]
ABLATION_GAMES_SET = [str(g) for g in RESULTS_SETTINGS.get("ablation_games") or []]
# Figures shown by `snakemake --report`, with their captions in workflow/report/.
PAPER_REPORT = {
    "aggregates.png": "Main comparison",
    "iqm.png": "Main comparison",
    "performance_profile.png": "Main comparison",
    "probability_of_improvement.png": "Main comparison",
    "ablations_aggregates.png": "Ablations",
    "ablations_performance_profile.png": "Ablations",
    "ablations_probability_of_improvement.png": "Ablations",
    "ablations_summary.png": "Ablations",
}


# The main comparison, the ablations and the seed planner from the published scores: CI width
# of IQM and power against runs per game on the 26 games and the ablation subset, with its
# check against a direct simulation (~30 s; reused from SEED_CHECK_CACHE for the same
# inputs). Seed planner settings: results.seed_plan_reps, seed_check_experiments,
# seed_check_reps (and seed, published_dir, ablation_games).
rule paper_files:
    input:
        list(
            dict.fromkeys(
                study_inputs("main", PUBLISHED_DIR, BASELINES_EXTRA)
                + study_inputs("ablations", PUBLISHED_DIR)
                + study_inputs("seeds", PUBLISHED_DIR)
            )
        ),
    output:
        # Every file of the three commands; the figures `snakemake --report` shows carry
        # their captions.
        [
            (
                report(
                    f"{PAPER_DIR}/{name}",
                    caption=(
                        "../report/paper_seed_plan.rst"
                        if name == "seed_plan.png"
                        else f"../report/paper_{name[:-4]}.rst"
                    ),
                    category="Paper (published scores)",
                    subcategory=PAPER_REPORT.get(name, "Seed planner"),
                )
                if name in PAPER_REPORT or name == "seed_plan.png"
                else f"{PAPER_DIR}/{name}"
            )
            for study in ("main", "ablations", "seeds")
            for name in study_outputs(study)
        ],
    log:
        main=f"{PAPER_LOGS}/paper/main.log",
        ablations=f"{PAPER_LOGS}/paper/ablations.log",
        seeds=f"{PAPER_LOGS}/paper/plan_seeds.log",
    benchmark:
        f"{PAPER_LOGS}/benchmarks/paper/paper.tsv"
    conda:
        "../../environment.yml"
    threads: 3  # one process per command; Snakemake gives at most --cores
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        settings=cli_flags(RESULTS_SETTINGS),
        extra=" ".join(shlex.quote(name) for name in BASELINES_EXTRA),
        games=" ".join(shlex.quote(g) for g in ABLATION_GAMES_SET),
        seed_settings=seed_plan_flags(RESULTS_SETTINGS),
        seed_games=(
            "--ablation-games " + " ".join(shlex.quote(g) for g in ABLATION_GAMES_SET)
            if ABLATION_GAMES_SET
            else ""
        ),
        cache=SEED_CHECK_CACHE,
    shell:
        # Each log keeps everything; the protocol warnings also go to the terminal, once.
        "OMP_NUM_THREADS=1 python -m rem.results parallel "
        "--logs {log.main:q} {log.ablations:q} {log.seeds:q} -- "
        "paper --study main --out {params.out:q} {params.settings} "
        "--baselines-extra {params.extra} ::: "
        "paper --study ablations --out {params.out:q} {params.settings} "
        "--ablation-games {params.games} ::: "
        "plan-seeds --check --check-cache {params.cache:q} --out {params.out:q} "
        "{params.seed_settings} {params.seed_games} "
        "&& sed -n '\\%^protocol mismatches%,\\%^$%p' {log.main:q} {log.ablations:q} >&2"


rule paper:
    input:
        rules.paper_files.output,
    localrule: True
