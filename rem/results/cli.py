"""Command line of the results stage (also `rem results ...`).

    python -m rem.results paper  [--study main|ablations|all] [--config config/config.yaml]
                                 [--baselines-extra DIAMOND ...] [--out results/paper]
    python -m rem.results report --scores results/runs/scores.csv --runs-dir runs
                                 [--out results/runs/report]

Settings come from the `results:` section of --config (if given), then from the flags.
"""

from __future__ import annotations

import argparse
import sys
import time

from rem.results.config import (
    ResultsConfig,
    ResultsConfigError,
    load_results_config,
)


def _settings(args: argparse.Namespace) -> ResultsConfig:
    cfg = load_results_config(args.config) if args.config else ResultsConfig()
    fields = {}
    for key in (
        "published_dir",
        "baselines_extra",
        "seed",
        "reps_aggregates",
        "reps_profiles",
        "reps_improvement",
        "ablation_games",
    ):
        value = getattr(args, key, None)
        # An empty list from the workflow means "not set": keep the config's/default value.
        if value is not None and not (key == "ablation_games" and not value):
            fields[key] = value
    data = {**cfg.__dict__, **fields}
    return ResultsConfig(**data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="results_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="workflow config YAML; its `results:` section is read")
        p.add_argument("--published-dir", help="folder of published scores (results/published)")
        p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
        p.add_argument("--reps-aggregates", type=int, help="bootstrap reps for aggregates (50000)")
        p.add_argument("--reps-improvement", type=int, help="reps for P(X > Y) (1000)")

    paper = sub.add_parser("paper", help="the paper's tables and figures from published scores")
    common(paper)
    paper.add_argument("--study", choices=("main", "ablations", "all"), default="all")
    paper.add_argument("--reps-profiles", type=int, help="bootstrap reps for profiles (2000)")
    paper.add_argument(
        "--baselines-extra",
        nargs="*",
        metavar="NAME",
        help="extra baselines: NAME reads <published-dir>/extra/NAME.json (replaces the config's)",
    )
    paper.add_argument(
        "--ablation-games", nargs="*", metavar="GAME", help="ablation subset (the paper's 8 games)"
    )
    paper.add_argument("--out", default="results/paper", help="output folder (results/paper)")
    paper.set_defaults(results_func=_paper)

    report = sub.add_parser("report", help="reproduction report of the pipeline's own runs")
    common(report)
    report.add_argument("--scores", required=True, help="the workflow's tidy score table (CSV)")
    report.add_argument("--runs-dir", required=True, help="folder holding <variant>/<game>/<seed>/")
    report.add_argument("--out", required=True, help="output folder")
    report.set_defaults(results_func=_report)


def _paper(args: argparse.Namespace) -> int:
    from rem.results.paper import run_paper

    cfg = _settings(args)
    studies = ("main", "ablations") if args.study == "all" else (args.study,)
    start = time.perf_counter()
    written = run_paper(cfg, args.out, studies)
    print(
        f"rem.results paper: {len(written)} files in {args.out} "
        f"({time.perf_counter() - start:.1f} s; reps {cfg.reps_aggregates}/"
        f"{cfg.reps_profiles}/{cfg.reps_improvement}, seed {cfg.seed})"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from rem.results.report import write_report

    cfg = _settings(args)
    written = write_report(args.scores, args.runs_dir, args.out, cfg)
    print(f"rem.results report: {len(written)} files in {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch; user errors (bad files, bad settings) print one line and return 2."""
    from rem.results.report import ReportError
    from rem.results.scores import ScoreFileError

    try:
        return args.results_func(args)
    except (ScoreFileError, ResultsConfigError, ReportError, FileNotFoundError) as err:
        print(f"rem results {args.results_command}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rem.results", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
