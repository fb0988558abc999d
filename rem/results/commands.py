"""Command line of the results stage (also `rem results ...`).

    python -m rem.results paper  [--study main|ablations|all] [--config config/config.yaml]
                                 [--baselines-extra DIAMOND ...] [--out results/paper]
    python -m rem.results report --scores results/runs/scores.csv --runs-dir runs
                                 --out results/runs/report
    python -m rem.results report --partial [--config CONFIG] [--runs-dir runs]
                                 [--out <results_dir>/partial]
    python -m rem.results plan-seeds [--runs 3 5 10 20] [--delta 0.05 0.1 0.2] [--check]
                                 [--check-cache DIR] [--out results/paper]
    python -m rem.results parallel --logs LOG ... -- COMMAND ::: COMMAND ...

Settings come from the `results:` section of --config (if given), then from the flags.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rem.results.protocols.records import warnings_text
from rem.results.settings import (
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
        "seed_plan_reps",
        "seed_check_experiments",
        "seed_check_reps",
    ):
        value = getattr(args, key, None)
        # An empty list from the workflow means "not set": keep the config's/default value.
        if value is not None and not (key == "ablation_games" and not value):
            fields[key] = value
    data = {**cfg.__dict__, **fields}
    return ResultsConfig(**data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands paper, report and plan-seeds with their flags."""
    sub = parser.add_subparsers(dest="results_command", required=True, metavar="COMMAND")
    _add_paper(sub)
    _add_report(sub)
    _add_plan_seeds(sub)
    _add_parallel(sub)


def _common(p: argparse.ArgumentParser) -> None:
    """The flags every subcommand takes: the config, the published folder, the bootstrap."""
    p.add_argument("--config", help="workflow config YAML; its `results:` section is read")
    p.add_argument("--published-dir", help="folder of published scores (results/published)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    p.add_argument("--reps-aggregates", type=int, help="bootstrap reps for aggregates (50000)")
    p.add_argument("--reps-improvement", type=int, help="reps for P(X > Y) (1000)")


def _add_paper(sub: argparse._SubParsersAction) -> None:
    paper = sub.add_parser("paper", help="the paper's tables and figures from published scores")
    _common(paper)
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


def _add_report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="reproduction report of the pipeline's own runs")
    _common(report)
    report.add_argument("--scores", help="the workflow's tidy score table (CSV; final report)")
    report.add_argument(
        "--runs-dir", help="folder holding <variant>/<game>/<seed>/ (--partial: default the "
        "config's runs_dir)"
    )  # fmt: skip
    report.add_argument("--out", help="output folder (--partial: default <results_dir>/partial)")
    report.add_argument(
        "--partial",
        action="store_true",
        help="preliminary report of the runs finished so far (never waits for the others), "
        "labelled with its coverage; the expected runs come from --config or --expected",
    )
    report.add_argument(
        "--expected", nargs="*", metavar="VARIANT:GAME:SEED", help="--partial: the expected runs"
    )
    report.add_argument(
        "--evaluations",
        help="--partial: read <dir>/<variant>/<game>/<seed>.json (the re-evaluations) instead "
        "of RUN_DIR/scores.json",
    )
    report.set_defaults(results_func=_report)


def _add_plan_seeds(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser(
        "plan-seeds",
        help="CI width of IQM and power to detect an IQM difference vs runs per game, "
        "from the published per-run scores",
    )
    _common(plan)
    plan.add_argument("--algorithm", default="REM", help="published runs to plan from (REM)")
    plan.add_argument(
        "--runs", nargs="+", type=int, default=[3, 5, 10, 20], metavar="N",
        help="runs per game to evaluate (3 5 10 20)",
    )  # fmt: skip
    plan.add_argument(
        "--delta", nargs="+", type=float, default=[0.05, 0.1, 0.2], metavar="D",
        help="true IQM differences to detect, human-normalised (0.05 0.1 0.2)",
    )  # fmt: skip
    plan.add_argument(
        "--ablation-games", nargs="*", metavar="GAME", help="second game set (the 8 ablation games)"
    )
    plan.add_argument("--seed-plan-reps", type=int, help="bootstrap experiments per row (20000)")
    plan.add_argument(
        "--check", action="store_true",
        help="also run the direct simulation (whole synthetic experiments, each bootstrapped)",
    )  # fmt: skip
    plan.add_argument("--seed-check-experiments", type=int, help="--check: experiments (200)")
    plan.add_argument("--seed-check-reps", type=int, help="--check: bootstrap reps each (1000)")
    plan.add_argument(
        "--check-cache", metavar="DIR",
        help="--check: reuse DIR/<key>.json, the simulation of the same runs, settings and code, "
        "or simulate and store it there",
    )  # fmt: skip
    plan.add_argument("--out", default="results/paper", help="output folder (results/paper)")
    plan.set_defaults(results_func=_plan_seeds)


def _add_parallel(sub: argparse._SubParsersAction) -> None:
    par = sub.add_parser(
        "parallel",
        help="several of these commands at once, in forked processes that share the imports, "
        "one log each (the workflow's paper target)",
    )
    par.add_argument(
        "--logs", nargs="+", required=True, metavar="LOG", help="one log file per command, in order"
    )
    par.add_argument(
        "commands", nargs=argparse.REMAINDER, metavar="-- COMMAND ::: COMMAND ...",
        help="the commands, separated by :::",
    )  # fmt: skip
    par.set_defaults(results_func=_parallel)


def _parallel(args: argparse.Namespace) -> int:
    from rem.results import parallel

    words = args.commands[1:] if args.commands[:1] == ["--"] else args.commands
    commands = parallel.split_commands(words)
    if not all(commands) or len(commands) != len(args.logs):
        raise UsageError(
            f"{len(args.logs)} log file(s) for {len(commands)} command(s): give one --logs file "
            f"per command, the commands after -- separated by {parallel.SEPARATOR}"
        )
    if any(c[0] == "parallel" for c in commands):
        raise UsageError("a parallel command cannot run parallel itself")
    parallel.preload()
    return parallel.run_forked(commands, [Path(p) for p in args.logs], main)


def _paper(args: argparse.Namespace) -> int:
    from rem.results.reports.paper import run_paper

    cfg = _settings(args)
    studies = ("main", "ablations") if args.study == "all" else (args.study,)
    start = time.perf_counter()
    written = run_paper(cfg, args.out, studies)
    print(warnings_text(written.warnings), end="", file=sys.stderr)
    print(
        f"rem.results paper: {len(written.files)} files in {args.out} "
        f"({time.perf_counter() - start:.1f} s; reps {cfg.reps_aggregates}/"
        f"{cfg.reps_profiles}/{cfg.reps_improvement}, seed {cfg.seed})"
    )
    return 0


class UsageError(ValueError):
    """A flag combination that cannot work; the message names the flags and the fix."""


def _report(args: argparse.Namespace) -> int:
    from rem.results.render.paths import display_path
    from rem.results.reports.reproduction import (
        write_partial_report,
        write_reproduction_report,
    )

    cfg = _settings(args)
    if not args.partial:
        missing = [f for f in ("scores", "runs_dir", "out") if getattr(args, f) is None]
        if missing:
            flags = ", ".join("--" + f.replace("_", "-") for f in missing)
            raise UsageError(f"missing {flags} (or use --partial for a preliminary report)")
        written = write_reproduction_report(args.scores, args.runs_dir, args.out, cfg)
        print(warnings_text(written.warnings), end="", file=sys.stderr)
        print(f"rem.results report: {len(written.files)} files in {display_path(args.out)}")
        return 0
    from rem.runs.sweep import expected_runs, load_workflow_config, parse_run_keys

    workflow = load_workflow_config(args.config)
    source = args.config or "config/config.yaml"
    expected = parse_run_keys(args.expected) if args.expected else expected_runs(workflow, source)
    runs_dir = args.runs_dir or workflow.get("runs_dir", "runs")
    out = args.out or str(Path(workflow.get("results_dir", "results/runs")) / "partial")
    written = write_partial_report(runs_dir, expected, out, cfg, args.evaluations)
    print(warnings_text(written.warnings), end="", file=sys.stderr)
    print(
        f"rem.results report --partial: {len(written.files)} files in {display_path(out)} "
        "(PRELIMINARY; coverage in coverage.csv)"
    )
    return 0


def _plan_seeds(args: argparse.Namespace) -> int:
    from rem.results.render.paths import display_path
    from rem.results.reports import seed_plan as seeds
    from rem.results.reports.studies import ABLATIONS, MAIN
    from rem.results.score_files import load_references, load_scores
    from rem.results.stats.scores import normalize

    cfg = _settings(args)
    files = {a.label: a.file for a in (*MAIN, *ABLATIONS)}
    if args.algorithm not in files:
        raise UsageError(
            f"--algorithm {args.algorithm!r}: no published runs; choose one of {', '.join(files)}"
        )
    refs = load_references(cfg.published_dir)
    raw = load_scores(
        Path(cfg.published_dir) / files[args.algorithm],
        name=args.algorithm,
        known_games=refs.games,
        required_games=None,
    )
    hns = normalize(refs, raw)
    game_sets = {}
    if set(refs.games) <= set(hns.games):
        game_sets[f"{len(refs.games)} games"] = refs.games
    ablation = tuple(cfg.ablation_games)
    unknown = [g for g in ablation if g not in hns.games]
    if unknown:
        raise UsageError(f"--ablation-games: {args.algorithm} has no runs on {', '.join(unknown)}")
    game_sets[f"{len(ablation)} ablation games"] = ablation
    if args.check_cache and not args.check:
        raise UsageError("--check-cache stores the --check simulation: add --check")
    if any(n < 2 for n in args.runs):
        raise UsageError(f"--runs: every run count must be >= 2, got {args.runs}")
    start = time.perf_counter()
    rows = seeds.plan_seeds(
        hns, game_sets, tuple(args.runs), tuple(args.delta), cfg.seed_plan_reps, cfg.seed
    )
    checks = None
    if args.check and args.check_cache:
        checks, stored, reused = seeds.cached_check(
            hns, game_sets, rows, Path(args.check_cache), experiments=cfg.seed_check_experiments,
            reps=cfg.seed_check_reps, seed=cfg.seed,
        )  # fmt: skip
        print(f"rem.results plan-seeds: check {'read from' if reused else 'stored in'} {stored}")
    elif args.check:
        checks = seeds.check(
            hns, game_sets, rows, cfg.seed_check_experiments, cfg.seed_check_reps, cfg.seed
        )
    written = seeds.write(
        Path(args.out), rows, args.algorithm, cfg.seed_plan_reps, cfg.seed, checks
    )
    print(seeds.markdown(rows, args.algorithm, cfg.seed_plan_reps, cfg.seed, checks))
    print(
        f"rem.results plan-seeds: {len(written)} files in {display_path(args.out)} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch; user errors (bad files, bad settings) print one line and return 2."""
    from rem.results.protocols.records import ProtocolError
    from rem.results.reports.seed_plan import CheckCacheError
    from rem.results.stats.types import ScoreFileError
    from rem.runs.files import ScoreError
    from rem.runs.sweep import SweepError

    errors = (ScoreFileError, ResultsConfigError, FileNotFoundError, ProtocolError,
              SweepError, ScoreError, UsageError, CheckCacheError)  # fmt: skip
    if args.results_command == "report":
        # Only the report raises it; its module loads the plotting stack, which plan-seeds
        # does not need.
        from rem.results.reports.reproduction import ReportError

        errors += (ReportError,)
    try:
        return args.results_func(args)
    except errors as err:
        print(f"rem results {args.results_command}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rem.results", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
