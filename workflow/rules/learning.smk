# The learning benchmark (config/learning.yaml, README "Does it learn?"): the trained runs
# against a random policy under the same env protocol, and each run's world model against
# the trivial predictors on fresh held-out data. Code: rem/results/learning.py.
#
#   snakemake --cores 2 --configfile config/learning.yaml learning


rule random_baseline:
    output:
        scores=f"{RESULTS_DIR}/random/{{game}}.json",
    log:
        f"{LOGS_DIR}/random/{{game}}.log",
    conda:
        ENV_FILE
    threads: 1
    params:
        episodes=learning_setting("random_episodes"),
        seed=learning_setting("random_seed"),
        preset=config["preset"],
    shell:
        "OMP_NUM_THREADS=1 rem evaluate --game {wildcards.game:q} --policy random "
        "--episodes {params.episodes} --seed {params.seed} --preset {params.preset:q} "
        "--envs 1 --out {output.scores:q} > {log:q} 2>&1"


rule wm_eval:
    input:
        marker=completed_marker("{variant}", "{game}", "{seed}"),
    output:
        figures=f"{RESULTS_DIR}/world_model/{{variant}}/{{game}}/{{seed}}.json",
    log:
        f"{LOGS_DIR}/wm_eval/{{variant}}/{{game}}/{{seed}}.log",
    conda:
        ENV_FILE
    threads: 1
    params:
        run_dir=lambda wc: run_dir(wc.variant, wc.game, wc.seed),
        steps=learning_setting("wm_eval_steps"),
    shell:
        "OMP_NUM_THREADS=1 rem wm-eval {params.run_dir:q} --steps {params.steps} "
        "--json {output.figures:q} > {log:q} 2>&1"


rule learning_report:
    input:
        markers=lambda wc: [
            completed_marker(*key) for key in RUNS if key.variant == wc.variant
        ],
        random=lambda wc: sorted(
            set(variant_files(wc.variant, "{results}/random/{g}.json"))
        ),
        world_model=lambda wc: variant_files(
            wc.variant, "{results}/world_model/{v}/{g}/{s}.json"
        ),
    output:
        markdown=report(
            f"{RESULTS_DIR}/report/{{variant}}/learning.md",
            category="Learning benchmark",
            labels={"file": "learning.md"},
        ),
        finals=f"{RESULTS_DIR}/report/{{variant}}/final_returns.csv",
        seeds=f"{RESULTS_DIR}/report/{{variant}}/seed_returns.csv",
        world_model=f"{RESULTS_DIR}/report/{{variant}}/world_model.csv",
        curves=report(
            f"{RESULTS_DIR}/report/{{variant}}/learning_curves.png",
            category="Learning benchmark",
            labels={"figure": "learning curves against random"},
        ),
    log:
        f"{LOGS_DIR}/learning_report/{{variant}}.log",
    conda:
        ENV_FILE
    script:
        "../scripts/learning_report.py"


rule learning:
    input:
        [f"{RESULTS_DIR}/report/{v}/learning.md" for v in VARIANTS],
