# One training run per (variant, game, seed).
#
# The only declared output is the run's COMPLETED marker, which `rem train` writes last.
# Snakemake deletes the declared outputs of a failed job; the run folder itself (checkpoints,
# replay, metrics) is deliberately NOT an output, so it survives a failed, killed or
# cancelled attempt and the retry (`retries:`) resumes from the last checkpoint. For the
# same reason a `--rerun-incomplete` costs nothing: the marker is absent or complete.
# The log is this attempt's; <log>.attempts.log (not an output, so never deleted) keeps all.
#
# Several runs per GPU (packing.runs_per_gpu: K, jobs: per-run): each GPU has K slots and
# Snakemake's `gpu` resource counts slots, so `--resources gpu=G` (G GPUs) becomes G x K
# here; a run takes one slot, with_gpu.py pins it to a GPU with a free slot.
GPUS_GIVEN = workflow.global_resources.get("gpu").value  # --resources gpu=G, else None
if gpu_slots() > 1 and not workflow.remote_exec and GPUS_GIVEN is not None:
    workflow.register_resource("gpu", GPUS_GIVEN * gpu_slots())


rule train:
    output:
        marker=completed_marker("{variant}", "{game}", "{seed}"),
    log:
        f"{LOGS_DIR}/train/{{variant}}/{{game}}/{{seed}}.log",
    benchmark:
        f"{LOGS_DIR}/benchmarks/train/{{variant}}/{{game}}/{{seed}}.tsv"
    retries: config["retries"]
    conda:
        ENV_FILE
    threads: agent_resource("train", "threads")
    resources:
        gpu=agent_resource("train", "gpu"),
        mem_mb=agent_resource("train", "mem_mb"),
        runtime=agent_resource("train", "runtime"),
    params:
        run_dir=lambda wc: run_dir(wc.variant, wc.game, wc.seed),
        attempts=lambda wc: f"{LOGS_DIR}/train/{wc.variant}/{wc.game}/{wc.seed}.attempts.log",
        preset=lambda wc: variant_of(wc).preset,
        overrides=lambda wc: " ".join(shlex.quote(o) for o in variant_of(wc).overrides),
    shell:
        # {log} holds this attempt (Snakemake deletes a job's log before it runs again);
        # the .attempts.log next to it keeps every attempt of the run, one after another.
        '( echo "== job start on $(hostname) at $(date -u +%FT%TZ)'
        ' (SLURM job ${{SLURM_JOB_ID:-none}})"; '
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        f"{script_path('with_gpu.py')} --slots {{resources.gpu}} --runs-per-gpu {gpu_slots()} -- "
        "rem train --game {wildcards.game:q} --seed {wildcards.seed} "
        "--variant {wildcards.variant:q} --run-dir {params.run_dir:q} "
        "--preset {params.preset:q} {params.overrides} ) 2>&1 "
        "| tee -a {params.attempts:q} > {log:q}"
