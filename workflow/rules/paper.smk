# The paper's tables and figures, regenerated from the published scores alone (rem/results,
# issue 8). Needs no training run:
#
#   snakemake --cores 2 paper              # results/paper/ (add --forceall to redo them)
#
# Settings: the optional `results:` section of the config (defaults = the paper's protocol):
#   results:
#     published_dir: results/published
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

from rem.results.studies import cli_flags, study_inputs, study_outputs

PAPER_DIR = "results/paper"
PAPER_LOGS = config.get("logs_dir", "logs")
RESULTS_SETTINGS = config.get("results") or {}
PUBLISHED_DIR = RESULTS_SETTINGS.get("published_dir", "results/published")
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
        "OMP_NUM_THREADS=1 python -m rem.results paper --study main --out {params.out:q} "
        "{params.settings} --baselines-extra {params.extra} > {log:q} 2>&1"


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
        "{params.settings} --ablation-games {params.games} > {log:q} 2>&1"


rule paper:
    input:
        rules.paper_main.output,
        rules.paper_ablations.output,
    localrule: True
