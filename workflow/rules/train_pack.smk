# K training runs per job on one GPU (packing: {runs_per_gpu: K, jobs: per-gpu}).
#
# Used instead of train.smk when the config packs runs per job: on SLURM, one sbatch job
# asks for one GPU and trains K runs side by side on it (REM's models leave most of a large
# GPU idle). The runs of the config, in its order, are cut into packs of K; pack i is the
# rule `train_pack_<i>`, whose outputs are its runs' COMPLETED markers. Inside the job,
# workflow/scripts/run_pack.py starts one `rem train` per run, each with the same command,
# log and attempts log as a `train` job would have, and waits for all of them.
#
# Each run resumes on its own: if one fails or is killed, the others go on; the pack job
# then fails and is retried (`retries`), and in the retry every unfinished run resumes from
# its own last checkpoint while a finished one only writes its COMPLETED again (Snakemake
# deletes a failed job's outputs; `rem train` recognises a finished run from its files).
#
# A pack asks for K x the `train` threads and memory, the `train` GPUs (1) and runtime.
import json

PACKS = [RUNS[i : i + PACK_K] for i in range(0, len(RUNS), PACK_K)]


def pack_spec(members):
    """run_pack.py's JSON: for each run its `rem train` command and log files."""
    spec = []
    for variant, game, seed in members:
        overrides = list(VARIANTS[variant].overrides)
        spec.append(
            {
                "run": f"{variant}/{game}/{seed}",
                "cmd": [
                    "rem",
                    "train",
                    "--game",
                    game,
                    "--seed",
                    str(seed),
                    "--variant",
                    variant,
                    "--run-dir",
                    run_dir(variant, game, seed),
                    "--preset",
                    VARIANTS[variant].preset,
                    *overrides,
                ],
                "log": f"{LOGS_DIR}/train/{variant}/{game}/{seed}.log",
                "attempts": f"{LOGS_DIR}/train/{variant}/{game}/{seed}.attempts.log",
            }
        )
    return json.dumps(spec)


for index, members in enumerate(PACKS):

    rule:
        name:
            f"train_pack_{index}"
        output:
            markers=[completed_marker(*key) for key in members],
        log:
            f"{LOGS_DIR}/train_pack/{index}.log",
        benchmark:
            f"{LOGS_DIR}/benchmarks/train_pack/{index}.tsv"
        retries: config["retries"]
        conda:
            ENV_FILE
        threads: configured_resource("train", "threads") * len(members)
        resources:
            gpu=configured_resource("train", "gpu"),
            mem_mb=configured_resource("train", "mem_mb") * len(members),
            runtime=configured_resource("train", "runtime"),
        params:
            spec=pack_spec(members),
            threads=configured_resource("train", "threads"),
        shell:
            f"{script_path('with_gpu.py')} --gpus {{resources.gpu}} -- "
            f"{script_path('run_pack.py')} --threads {{params.threads}} {{params.spec:q}} "
            "> {log:q} 2>&1"
