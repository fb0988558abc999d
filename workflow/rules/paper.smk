# The paper's tables and figures, regenerated from the published scores alone
# (rem/results). Needs no training run:
#
#   snakemake --cores 2 paper              # results/paper/ (add --forceall to redo them)
#
# It also writes the seed planner (seed_plan.*, rule plan_seeds); its direct-simulation check
# is read from SEED_CHECK_CACHE when the same runs, settings and code were simulated before.
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

from rem.results.studies import cli_flags, seed_plan_flags, study_inputs, study_outputs

PAPER_DIR = "results/paper"
PAPER_LOGS = LOGS_DIR
# The seed planner's check, stored per key of its inputs (rem.results.seeds.cached_check;
# committed, so the paper target does not simulate again; delete a file to redo it).
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


rule paper_main:
    input:
        study_inputs("main", PUBLISHED_DIR, BASELINES_EXTRA),
    output:
        [
            (
                report(
                    f"{PAPER_DIR}/{name}",
                    caption=f"../report/paper_{name[:-4]}.rst",
                    category="Paper (published scores)",
                    subcategory=PAPER_REPORT[name],
                )
                if name in PAPER_REPORT
                else f"{PAPER_DIR}/{name}"
            )
            for name in study_outputs("main")
        ],
    log:
        f"{PAPER_LOGS}/paper/main.log",
    benchmark:
        f"{PAPER_LOGS}/benchmarks/paper/main.tsv"
    conda:
        "../../environment.yml"
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        settings=cli_flags(RESULTS_SETTINGS),
        extra=" ".join(shlex.quote(name) for name in BASELINES_EXTRA),
    shell:
        # The log keeps everything; the protocol warnings also go to the terminal, once.
        "OMP_NUM_THREADS=1 python -m rem.results paper --study main --out {params.out:q} "
        "{params.settings} --baselines-extra {params.extra} 2>&1 | tee {log:q} "
        "| sed -n '\\%^protocol mismatches%,\\%^$%p' >&2"


rule paper_ablations:
    input:
        study_inputs("ablations", PUBLISHED_DIR),
    output:
        [
            (
                report(
                    f"{PAPER_DIR}/{name}",
                    caption=f"../report/paper_{name[:-4]}.rst",
                    category="Paper (published scores)",
                    subcategory=PAPER_REPORT[name],
                )
                if name in PAPER_REPORT
                else f"{PAPER_DIR}/{name}"
            )
            for name in study_outputs("ablations")
        ],
    log:
        f"{PAPER_LOGS}/paper/ablations.log",
    benchmark:
        f"{PAPER_LOGS}/benchmarks/paper/ablations.tsv"
    conda:
        "../../environment.yml"
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        settings=cli_flags(RESULTS_SETTINGS),
        games=" ".join(shlex.quote(g) for g in ABLATION_GAMES_SET),
    shell:
        "OMP_NUM_THREADS=1 python -m rem.results paper --study ablations --out {params.out:q} "
        "{params.settings} --ablation-games {params.games} 2>&1 | tee {log:q} "
        "| sed -n '\\%^protocol mismatches%,\\%^$%p' >&2"


# The seed planner from the published REM runs (rem results plan-seeds): CI width of IQM and
# power against runs per game, on the 26 games and the ablation subset, with its check
# against a direct simulation (~30 s; reused from SEED_CHECK_CACHE for the same inputs).
# Settings: results.seed_plan_reps, seed_check_experiments, seed_check_reps (and seed,
# published_dir, ablation_games).
rule plan_seeds:
    input:
        study_inputs("seeds", PUBLISHED_DIR),
    output:
        [
            (
                report(
                    f"{PAPER_DIR}/{name}",
                    caption="../report/paper_seed_plan.rst",
                    category="Paper (published scores)",
                    subcategory="Seed planner",
                )
                if name == "seed_plan.png"
                else f"{PAPER_DIR}/{name}"
            )
            for name in study_outputs("seeds")
        ],
    log:
        f"{PAPER_LOGS}/paper/plan_seeds.log",
    benchmark:
        f"{PAPER_LOGS}/benchmarks/paper/plan_seeds.tsv"
    conda:
        "../../environment.yml"
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
        settings=seed_plan_flags(RESULTS_SETTINGS),
        cache=SEED_CHECK_CACHE,
        games=(
            "--ablation-games " + " ".join(shlex.quote(g) for g in ABLATION_GAMES_SET)
            if ABLATION_GAMES_SET
            else ""
        ),
    shell:
        "OMP_NUM_THREADS=1 python -m rem.results plan-seeds --check --check-cache "
        "{params.cache:q} --out {params.out:q} {params.settings} {params.games} > {log:q} 2>&1"


rule paper:
    input:
        rules.paper_main.output,
        rules.paper_ablations.output,
        rules.plan_seeds.output,
    localrule: True
