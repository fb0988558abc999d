# The pilot (config/pilot.yaml, README "Before a sweep: the pilot"): the config's runs (3
# games x 1 seed, 100 epochs, snapshots every 10) trained as usual (train.smk or
# train_pack.smk), then `rem wm-eval` on each run's snapshots at pilot.wm_eval_epochs, the
# random policy per game, with packing one run trained alone to measure the slowdown, and
# the report: go / no-go rules, per-game figures, the full config's cost and disk from the
# pilot's own epochs. Code: rem/results/pilot.py, rem/results/pilot_report.py,
# rem/ops/pilot.py.
#
#   snakemake pilot --configfile config/pilot.yaml --profile profiles/local


PILOT = config["pilot"]
PILOT_DIR = RESULTS_DIR  # config/pilot.yaml: results/runs/pilot


include: "pilot_functions.smk"


rule pilot_wm_eval:
    input:
        marker=completed_marker("{variant}", "{game}", "{seed}"),
    output:
        figures=f"{PILOT_DIR}/pilot_world_model/{{variant}}/{{game}}/{{seed}}/epoch_{{epoch}}.json",
    log:
        f"{LOGS_DIR}/pilot_wm_eval/{{variant}}/{{game}}/{{seed}}/epoch_{{epoch}}.log",
    wildcard_constraints:
        epoch="[0-9]+",
    conda:
        ENV_FILE
    threads: 1
    params:
        snapshot=lambda wc: snapshot_dir(wc.variant, wc.game, wc.seed, wc.epoch),
        steps=learning_setting("wm_eval_steps"),
    shell:
        "OMP_NUM_THREADS=1 rem wm-eval {params.snapshot:q} --steps {params.steps} "
        "--json {output.figures:q} > {log:q} 2>&1"


rule pilot_solo:
    input:
        markers=[completed_marker(*key) for key in RUNS],
    output:
        marker=f"{PILOT_DIR}/solo/{COMPLETED}",
    log:
        f"{LOGS_DIR}/pilot_solo.log",
    conda:
        ENV_FILE
    threads: configured_resource("train", "threads")
    resources:
        gpu=configured_resource("train", "gpu"),
        mem_mb=configured_resource("train", "mem_mb"),
        runtime=configured_resource("train", "runtime"),
    params:
        command=lambda wc: solo_command(),
        run=f"{PILOT_DIR}/solo/run",
    shell:
        f"( {script_path('with_gpu.py')} --gpus {{resources.gpu}} -- {{params.command}} "
        "&& touch {output.marker:q} ) > {log:q} 2>&1"


rule pilot_report:
    input:
        markers=[completed_marker(*key) for key in RUNS],
        world_model=lambda wc: pilot_wm_files(),
        random=sorted({f"{RESULTS_DIR}/random/{g}.json" for _, g, _ in RUNS}),
        solo=lambda wc: [f"{PILOT_DIR}/solo/{COMPLETED}"] if pilot_solo_wanted() else [],
    output:
        markdown=report(
            f"{PILOT_DIR}/report/pilot.md",
            category="Pilot",
            caption="../report/pilot_report.rst",
            labels={"file": "pilot.md"},
        ),
        json=f"{PILOT_DIR}/report/pilot.json",
        learning=report(
            f"{PILOT_DIR}/report/pilot_learning.png",
            category="Pilot",
            caption="../report/pilot_learning.rst",
            labels={"figure": "returns and tokenizer error"},
        ),
        world_model=report(
            f"{PILOT_DIR}/report/pilot_world_model.png",
            category="Pilot",
            caption="../report/pilot_world_model.rst",
            labels={"figure": "world model against its baselines"},
        ),
    log:
        f"{LOGS_DIR}/pilot_report.log",
    conda:
        ENV_FILE
    params:
        runs=[run_dir(v, g, s) for v, g, s in RUNS],
        wm_root=lambda wc, input: str(Path(input.world_model[0]).parents[3]),
        random_dir=lambda wc, input: os.path.dirname(input.random[0]),
        published=published_dir(),
        wm_epochs=PILOT["wm_eval_epochs"],
        solo=f"{PILOT_DIR}/solo/run" if pilot_solo_wanted() else None,
        runs_per_gpu=PACK_K,
        gpus=PILOT["gpus"],
        configfiles=[str(f) for f in workflow.configfiles],
    script:
        "../scripts/pilot_report.py"


rule pilot:
    input:
        rules.pilot_report.output.markdown,
