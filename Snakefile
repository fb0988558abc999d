# REM on Atari 100k: train every (variant, game, seed) of the config, collect the scores,
# aggregate them and write the reproduction report. Rules live in workflow/rules/.
#
#   snakemake --cores 2 --configfile config/quick.yaml     # the whole DAG on a CPU (~15 min)
#   snakemake --profile profiles/local                     # paper protocol, GPU workstation
#   snakemake --profile profiles/slurm                     # paper protocol, SLURM cluster
#   snakemake --cores 2 paper                              # the paper's tables and figures
import os

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"


# Stop before any job starts if the config is wrong (schema, games, variant files, overrides).
check_config(
    config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
)
VARIANTS = resolve_variants(config)
RUNS = runs(config)
RUNS_DIR = config["runs_dir"]
RESULTS_DIR = config["results_dir"]
LOGS_DIR = config["logs_dir"]
PACK_K, PACK_JOBS = packing_mode(config)
# K runs per job on one GPU (packing.jobs: per-gpu), else one job per run.
TRAIN_RULES = "train_pack" if PACK_K > 1 and PACK_JOBS == "per-gpu" else "train"


include: f"workflow/rules/{TRAIN_RULES}.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/learning.smk"
include: "workflow/rules/pilot.smk"


rule all:
    default_target: True
    input:
        rules.collect.output,
        rules.report.output,
