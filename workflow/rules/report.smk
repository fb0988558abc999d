# Aggregates of our runs against the published scores and the reproduction report
# (code: rem/results, `python -m rem.results report`). The figures and tables are also marked
# for Snakemake's own HTML report: `snakemake --report results/runs/report.html` afterwards.

from rem.results.reports.studies import study_outputs


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
        protocols=report(
            f"{RESULTS_DIR}/report/protocols.md",
            category="Reproduction report",
            labels={"file": "evaluation protocols (ours vs published)"},
        ),
        mismatches=f"{RESULTS_DIR}/report/protocol_mismatches.csv",
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
        # The log keeps everything; the protocol warnings also go to the terminal, once.
        "python -m rem.results report --scores {input.table:q} --runs-dir {params.runs_dir:q} "
        "--out {params.out:q} {params.settings} 2>&1 | tee {log:q} "
        "| sed -n '\\%^protocol mismatches%,\\%^$%p' >&2"


# Preliminary report of whatever runs have finished (`snakemake partial`, or
# `rem results report --partial`): every page, table and figure says PRELIMINARY and its
# coverage (N of M runs per variant and game); written to <results_dir>/partial/ so the
# final report is never overwritten. Its inputs are the score files of the runs finished at
# the time Snakemake starts (RUN_DIR/scores.json of runs with a COMPLETED marker). They are
# not outputs of any rule, so this target never schedules, waits for or re-runs a training
# job, and it runs again when a new run has finished.
PARTIAL_DIR = f"{RESULTS_DIR}/partial"


rule report_partial:
    input:
        finished_score_files,
    output:
        [f"{PARTIAL_DIR}/{name}" for name in study_outputs("partial")],
    log:
        f"{LOGS_DIR}/report_partial.log",
    localrule: True
    conda:
        ENV_FILE
    params:
        out=lambda wc, output: os.path.dirname(output[0]),
        runs_dir=RUNS_DIR,
        expected=" ".join(f"{v}:{g}:{s}" for v, g, s in RUNS),
        # With re-evaluation on, a run counts once its re-evaluation exists (read, not
        # required: the evaluate jobs belong to the final DAG).
        evaluations=(
            f"--evaluations {shlex.quote(os.path.join(RESULTS_DIR, 'evaluations'))}"
            if config["evaluation"]["episodes"]
            else ""
        ),
        settings=results_flags(),
    shell:
        "python -m rem.results report --partial --runs-dir {params.runs_dir:q} "
        "--out {params.out:q} {params.evaluations} {params.settings} "
        "--expected {params.expected} 2>&1 | tee {log:q} "
        "| sed -n '\\%^protocol mismatches%,\\%^$%p' >&2"


rule partial:
    input:
        rules.report_partial.output,
    localrule: True
