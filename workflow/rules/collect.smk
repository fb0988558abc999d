# Every run's final score in one tidy table: variant, game, seed, raw_score, hns, episodes.


rule collect:
    input:
        # scores.json is written by `rem train` just before its COMPLETED marker, but only the
        # marker is a declared output (see train.smk), so the markers are the inputs here.
        markers=[completed_marker(*key) for key in RUNS],
        evaluations=(
            [score_file(v, g, s) for v, g, s in RUNS]
            if config["evaluation"]["episodes"]
            else []
        ),
    output:
        table=f"{RESULTS_DIR}/scores.csv",
    log:
        f"{LOGS_DIR}/collect.log",
    conda:
        ENV_FILE
    params:
        runs=[(v, g, s, score_file(v, g, s)) for v, g, s in RUNS],
        published=published_dir(),
    script:
        "../scripts/collect_scores.py"
