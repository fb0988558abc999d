# Aggregates of our runs against the published scores and the reproduction report
# (code: rem/results, `python -m rem.results report`). The figures and tables are also marked
# for Snakemake's own HTML report: `snakemake --report results/runs/report.html` afterwards.


rule report:
    input:
        table=rules.collect.output.table,
        markers=rules.collect.input.markers,
    output:
        markdown=report(
            f"{RESULTS_DIR}/report/reproduction.md",
            category="Reproduction report",
            labels={"file": "reproduction.md"},
        ),
        per_game=report(
            f"{RESULTS_DIR}/report/per_game.csv",
            category="Reproduction report",
            labels={"file": "per-game table (ours vs published)"},
        ),
        aggregates=report(
            f"{RESULTS_DIR}/report/aggregates.csv",
            category="Reproduction report",
            labels={"file": "aggregates with 95% CIs"},
        ),
        improvement=f"{RESULTS_DIR}/report/probability_of_improvement.csv",
        manifests=report(
            f"{RESULTS_DIR}/report/runs.csv",
            category="Reproduction report",
            labels={"file": "run manifests"},
        ),
        curves=report(
            f"{RESULTS_DIR}/report/learning_curves.png",
            caption="../report/reproduction_learning_curves.rst",
            category="Reproduction report",
            labels={"figure": "learning curves"},
        ),
        aggregates_png=report(
            f"{RESULTS_DIR}/report/aggregates.png",
            caption="../report/reproduction_aggregates.rst",
            category="Reproduction report",
            labels={"figure": "aggregates: ours vs published"},
        ),
    log:
        f"{LOGS_DIR}/report.log",
    conda:
        ENV_FILE
    params:
        out=lambda wc, output: os.path.dirname(output.markdown),
        # RUNS_DIR, from a marker RUNS_DIR/<variant>/<game>/<seed>/COMPLETED
        runs_dir=lambda wc, input: Path(input.markers[0]).parents[3],
        settings=results_flags(),
    shell:
        "python -m rem.results report --scores {input.table:q} --runs-dir {params.runs_dir:q} "
        "--out {params.out:q} {params.settings} > {log:q} 2>&1"
