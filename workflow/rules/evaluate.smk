# Re-evaluation of a finished run from its checkpoint, without retraining.
#
# By default (evaluation.episodes: null) the scores are the trainer's own final evaluation
# (RUN_DIR/scores.json, the paper's 100 episodes) and this rule is not part of the DAG.
# With evaluation.episodes: N every finished run is evaluated again on N episodes; changing
# N (or the seed) re-runs only these jobs: the train jobs' inputs and params are unchanged.


rule evaluate:
    input:
        marker=completed_marker("{variant}", "{game}", "{seed}"),
    output:
        scores=f"{RESULTS_DIR}/evaluations/{{variant}}/{{game}}/{{seed}}.json",
    log:
        f"{LOGS_DIR}/evaluate/{{variant}}/{{game}}/{{seed}}.log",
    benchmark:
        f"{LOGS_DIR}/benchmarks/evaluate/{{variant}}/{{game}}/{{seed}}.tsv"
    conda:
        ENV_FILE
    threads: agent_resource("evaluate", "threads")
    resources:
        # whole GPUs, in slots (train.smk)
        gpu=lambda wc: agent_resource("evaluate", "gpu")(wc) * gpu_slots(),
        mem_mb=agent_resource("evaluate", "mem_mb"),
        runtime=agent_resource("evaluate", "runtime"),
    params:
        run_dir=lambda wc: run_dir(wc.variant, wc.game, wc.seed),
        episodes=config["evaluation"]["episodes"],
        # Distinct environment seeds per run, disjoint from the training seeds.
        seed=lambda wc: config["evaluation"]["seed"] + int(wc.seed),
        envs=(
            f"--envs {config['evaluation']['num_envs']}"
            if config["evaluation"]["num_envs"]
            else ""
        ),
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        f"{script_path('with_gpu.py')} --slots {{resources.gpu}} --runs-per-gpu {gpu_slots()} -- "
        "rem evaluate --checkpoint {params.run_dir:q} --episodes {params.episodes} "
        "--seed {params.seed} {params.envs} --out {output.scores:q} > {log:q} 2>&1"
