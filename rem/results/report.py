"""Reproduction report: the pipeline's own runs against the published scores.

Inputs: the workflow's tidy score table (CSV: variant, game, seed, raw_score, hns,
episodes), the run folders (`<runs_dir>/<variant>/<game>/<seed>/` with metrics.jsonl and
manifest.json) and the published scores. For each variant with a published counterpart
(rem -> REM.json, <name> -> ablations/ablation-<name>.json) on the games both cover:
aggregates with CIs side by side, P(ours > published) with its CI and, per metric, a plain
verdict (do the 95% CIs overlap?). Then learning curves and a summary of the manifests.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rem.results import figures, tables
from rem.results.bootstrap import Interval, aggregate_intervals, improvement_intervals
from rem.results.config import ResultsConfig
from rem.results.metrics import METRIC_LABELS, METRICS
from rem.results.scores import References, ScoreFileError, Scores, load_references, load_scores
from rem.utils.atomic import atomic_write_text

TIDY_COLUMNS = ("variant", "game", "seed", "raw_score", "hns", "episodes")
# metrics.jsonl keys, most preferred first: the spec's names, then what rem train logs.
TEST_RETURN_KEYS = ("test_dataset/return", "test/return_mean", "test/return")
TRAIN_RETURN_KEYS = ("train_dataset/return", "collection/return", "train/return")


class ReportError(ValueError):
    """The tidy table or a run folder cannot be used; the message names the file and row."""


@dataclass(frozen=True)
class Run:
    variant: str
    game: str
    seed: int
    raw: float
    hns: float
    episodes: int


def read_tidy(path: str | Path, refs: References) -> list[Run]:
    """Parse and check the tidy table; hns must agree with our references."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: score table not found (the workflow's collect rule writes it)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TIDY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ReportError(
                f"{path}: missing column(s) {missing}; expected {', '.join(TIDY_COLUMNS)}"
            )
        runs, seen = [], set()
        for line, row in enumerate(reader, start=2):
            where = f"{path}, line {line} ({row['variant']}/{row['game']}/{row['seed']})"
            if row["game"] not in refs.human:
                raise ReportError(
                    f"{where}: unknown game {row['game']!r}; valid games are {', '.join(refs.games)}"
                )
            try:
                run = Run(
                    row["variant"],
                    row["game"],
                    int(row["seed"]),
                    float(row["raw_score"]),
                    float(row["hns"]),
                    int(row["episodes"]),
                )
            except ValueError as err:
                raise ReportError(f"{where}: {err}") from None
            if not (math.isfinite(run.raw) and math.isfinite(run.hns)):
                raise ReportError(f"{where}: raw_score/hns is not finite")
            expected = float(refs.hns(run.game, run.raw))
            if not math.isclose(run.hns, expected, rel_tol=1e-9, abs_tol=1e-9):
                raise ReportError(
                    f"{where}: hns {run.hns} does not match (raw - random) / (human - random) "
                    f"= {expected} with the references in results/published"
                )
            key = (run.variant, run.game, run.seed)
            if key in seen:
                raise ReportError(f"{where}: duplicate run")
            seen.add(key)
            runs.append(run)
    if not runs:
        raise ReportError(f"{path}: the score table has no runs")
    return runs


def published_file(published_dir: Path, variant: str) -> Path:
    if variant == "rem":
        return published_dir / "REM.json"
    return published_dir / "ablations" / f"ablation-{variant}.json"


def _scores(name: str, runs: list[Run], games: tuple[str, ...]) -> Scores:
    by_game = {
        g: np.array([r.raw for r in sorted(runs, key=lambda r: r.seed) if r.game == g])
        for g in games
    }
    return Scores(name, games, by_game, "score table")


@dataclass
class Comparison:
    variant: str
    games: tuple[str, ...]
    ours: Scores  # raw
    published: Scores  # raw
    intervals: dict[str, Interval]
    improvement: Interval


@dataclass
class ReportData:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compare(runs: list[Run], refs: References, cfg: ResultsConfig) -> ReportData:
    data = ReportData()
    pub_dir = Path(cfg.published_dir)
    for variant in sorted({r.variant for r in runs}):
        mine = [r for r in runs if r.variant == variant]
        path = published_file(pub_dir, variant)
        if not path.is_file():
            data.notes.append(f"{variant}: no published scores ({path} does not exist).")
            continue
        try:
            pub = load_scores(path, name="published", known_games=refs.games, required_games=None)
        except ScoreFileError as err:
            raise ReportError(str(err)) from None
        games = tuple(g for g in refs.games if g in pub.games and any(r.game == g for r in mine))
        skipped = sorted({r.game for r in mine} - set(games))
        if skipped:
            data.notes.append(
                f"{variant}: no published runs for {', '.join(skipped)}; left out of the comparison."
            )
        if not games:
            continue
        ours_raw = _scores(f"ours ({variant})", mine, games)
        pub_raw = pub.subset(games).renamed(f"published ({variant})")
        hns = {s.name: refs.normalize(s) for s in (ours_raw, pub_raw)}
        intervals = aggregate_intervals(hns, cfg.reps_aggregates, cfg.seed)
        pair = f"{ours_raw.name},{pub_raw.name}"
        poi = improvement_intervals(
            {pair: (hns[ours_raw.name], hns[pub_raw.name])}, cfg.reps_improvement, cfg.seed
        )[pair]
        data.comparisons.append(Comparison(variant, games, ours_raw, pub_raw, intervals, poi))
    return data


def verdict(ours: Interval, pub: Interval, k: int, metric: str) -> str:
    lo = max(ours.low[k], pub.low[k])
    hi = min(ours.high[k], pub.high[k])
    if lo <= hi:
        return "consistent: the 95% CIs overlap"
    higher = ours.low[k] > pub.high[k]
    if metric == "optimality_gap":
        return (
            "ours better (lower gap): CIs do not overlap"
            if not higher
            else ("ours worse (higher gap): CIs do not overlap")
        )
    return f"ours {'higher' if higher else 'lower'}: CIs do not overlap"


# ------------------------------------------------------------------ run folders


def read_curves(metrics_path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """{'test'|'train'|'final': (epochs, returns)} from metrics.jsonl + a note on what is missing.

    'final' is the trainer's final evaluation (the score of the run), one point.
    """
    if not metrics_path.is_file():
        return {}, f"{metrics_path}: not found"
    points: dict[str, list[tuple[int, float]]] = {"test": [], "train": [], "final": []}
    bad = 0
    for line in metrics_path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1  # a torn last line after a kill, or garbage
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
            continue
        if rec.get("final"):
            value = rec.get("final/mean_return")
            if isinstance(value, (int, float)) and math.isfinite(value):
                points["final"].append((rec["epoch"], float(value)))
            continue
        for label, keys in (("test", TEST_RETURN_KEYS), ("train", TRAIN_RETURN_KEYS)):
            for key in keys:
                value = rec.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    points[label].append((rec["epoch"], float(value)))
                    break
    curves = {
        label: (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
        for label, pts in points.items()
        if pts
    }
    notes = []
    if bad:
        notes.append(f"{bad} unreadable line(s) skipped")
    for label, keys in (("test", TEST_RETURN_KEYS), ("train", TRAIN_RETURN_KEYS)):
        if label not in curves:
            notes.append(f"no {label} return (looked for {', '.join(keys)})")
    return curves, (f"{metrics_path}: " + "; ".join(notes)) if notes else ""


def _short(value: object) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def manifest_row(run_dir: Path, run: Run) -> dict[str, str]:
    row = {"variant": run.variant, "game": run.game, "seed": str(run.seed)}
    path = run_dir / "manifest.json"
    try:
        man = json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        man = None
        row["note"] = "manifest.json is not valid JSON"
    if man is None:
        row.setdefault("note", "no manifest.json")
        return row
    packages = man.get("packages") or man.get("versions") or {}
    git = man.get("git") or {}
    config = man.get("config") or {}
    perceptual = man.get("perceptual_loss", (config.get("tokenizer") or {}).get("perceptual_loss"))
    commit = git.get("commit")
    row.update(
        {
            "status": _short(man.get("status")),
            "preset": _short(man.get("preset")),
            "device": _short(man.get("device")),
            "device_name": _short(man.get("device_name")),
            "perceptual_loss": {True: "on", False: "off"}.get(perceptual, "-"),
            "sessions": str(len(man.get("sessions") or [])),
            "git": (commit[:10] + ("+dirty" if git.get("dirty") else "")) if commit else "-",
            "torch": _short(packages.get("torch")),
            "numpy": _short(packages.get("numpy")),
            "gymnasium": _short(packages.get("gymnasium")),
            "ale-py": _short(packages.get("ale-py")),
            "rem": _short(packages.get("rem")),
        }
    )
    return row


MANIFEST_COLUMNS = (
    "variant",
    "game",
    "seed",
    "status",
    "preset",
    "device",
    "device_name",
    "perceptual_loss",
    "sessions",
    "git",
    "torch",
    "numpy",
    "gymnasium",
    "ale-py",
    "rem",
    "note",
)


# ------------------------------------------------------------------ writing


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(
    scores_csv: str | Path, runs_dir: str | Path, out: str | Path, cfg: ResultsConfig
) -> list[Path]:
    out, runs_dir = Path(out), Path(runs_dir)
    refs = load_references(cfg.published_dir)
    runs = read_tidy(scores_csv, refs)
    data = compare(runs, refs, cfg)
    out.mkdir(parents=True, exist_ok=True)

    # Tables.
    all_intervals: dict[str, Interval] = {}
    poi: dict[str, Interval] = {}
    per_game_rows: list[list[object]] = [
        ["variant", "game", "ours_runs", "ours_raw", "ours_hns", "published_runs",
         "published_raw", "published_hns"]
    ]  # fmt: skip
    for c in data.comparisons:
        all_intervals.update(c.intervals)
        poi[f"{c.ours.name},{c.published.name}"] = c.improvement
        for g in c.games:
            o, p = c.ours.runs[g], c.published.runs[g]
            per_game_rows.append(
                [c.variant, g, len(o), float(np.mean(o)), float(np.mean(refs.hns(g, o))),
                 len(p), float(np.mean(p)), float(np.mean(refs.hns(g, p)))]
            )  # fmt: skip
    tables.write_aggregates_csv(out / "aggregates.csv", all_intervals)
    tables.write_interval_csv(out / "probability_of_improvement.csv", "pair", poi)
    atomic_write_text(
        out / "per_game.csv",
        tables._csv(
            [[tables._num(x) if isinstance(x, float) else x for x in r] for r in per_game_rows]
        ),
    )

    # Learning curves and manifests.
    curves: dict[str, dict[str, list]] = {}
    manifests, curve_notes = [], []
    for run in sorted(runs, key=lambda r: (r.variant, r.game, r.seed)):
        run_dir = runs_dir / run.variant / run.game / str(run.seed)
        got, note = read_curves(run_dir / "metrics.jsonl")
        if note:
            curve_notes.append(note)
        for label, (ep, ret) in got.items():
            curves.setdefault(run.game, {}).setdefault(run.variant, []).append((label, ep, ret))
        manifests.append(manifest_row(run_dir, run))
    atomic_write_text(
        out / "runs.csv",
        tables._csv(
            [list(MANIFEST_COLUMNS)] + [[m.get(c, "") for c in MANIFEST_COLUMNS] for m in manifests]
        ),
    )
    variants = sorted({r.variant for r in runs})
    colours = figures.palette({v: i for i, v in enumerate(variants)})
    fig_colours = figures.palette({name: i for i, name in enumerate(all_intervals)})
    figures.save_png(figures.learning_curves_figure(curves, colours), out, "learning_curves")
    figures.save_png(figures.aggregates_figure(all_intervals, fig_colours), out, "aggregates")

    atomic_write_text(
        out / "reproduction.md",
        _markdown(scores_csv, runs_dir, runs, data, refs, cfg, manifests, curve_notes),
    )
    return [out / f for f in ("reproduction.md", "per_game.csv", "aggregates.csv",
                               "probability_of_improvement.csv", "runs.csv",
                               "learning_curves.png", "aggregates.png")]  # fmt: skip


def _markdown(
    scores_csv, runs_dir, runs, data: ReportData, refs, cfg, manifests, curve_notes
) -> str:
    variants = sorted({r.variant for r in runs})
    games = sorted({r.game for r in runs})
    seeds = sorted({r.seed for r in runs})
    md = [
        "# Reproduction report",
        "",
        f"Our runs: {len(runs)} from `{scores_csv}` (variants {', '.join(variants)}; games "
        f"{', '.join(games)}; seeds {', '.join(map(str, seeds))}), compared with the scores "
        f"published with the REM paper (`{cfg.published_dir}`). Human-normalised scores; 95% "
        f"stratified-bootstrap CIs ({cfg.reps_aggregates} repetitions for aggregates, "
        f"{cfg.reps_improvement} for the probability of improvement, seed {cfg.seed}). With "
        "few runs or games the CIs are wide and say little; the verdicts only ask whether the "
        "intervals overlap.",
        "",
    ]
    if not data.comparisons:
        md += ["No variant of the score table has published scores on its games.", ""]
    for c in data.comparisons:
        ours, pub = c.intervals[c.ours.name], c.intervals[c.published.name]
        single = [g for g in c.games if len(c.ours.runs[g]) < 2]
        games = f"{len(c.games)} game{'s' if len(c.games) > 1 else ''}"
        md += [f"## {c.variant} ({games}: {', '.join(c.games)})", ""]
        rows = []
        for k, m in enumerate(METRICS):
            rows.append([METRIC_LABELS[m], tables._fmt_ci(ours, k, m), tables._fmt_ci(pub, k, m),
                         verdict(ours, pub, k, m)])  # fmt: skip
        md += [_md_table(["Metric", "Ours", "Published", "Verdict"], rows), ""]
        if single:
            md += [
                f"Caution: one run only on {', '.join(single)}; a bootstrap over one run has no "
                "spread, so our intervals understate the uncertainty there.",
                "",
            ]
        p = c.improvement
        md += [
            f"P(our run > published run), averaged over games: **{p.estimate[0]:.3f}** "
            f"[{p.low[0]:.3f}, {p.high[0]:.3f}] (0.5 = indistinguishable).",
            "",
        ]
        rows = []
        for g in c.games:
            o, q = c.ours.runs[g], c.published.runs[g]
            rows.append([g, f"{np.mean(o):.1f} (n={len(o)})", f"{np.mean(q):.1f} (n={len(q)})",
                         f"{np.mean(refs.hns(g, o)):.3f}", f"{np.mean(refs.hns(g, q)):.3f}"])  # fmt: skip
        md += [
            _md_table(["Game", "Ours raw", "Published raw", "Ours HNS", "Published HNS"], rows),
            "",
        ]
    md += ["## Aggregates", "", "![Aggregates: ours vs published](aggregates.png)", ""]
    md += ["## Learning curves", "", "Solid: test return; dashed: train (collection) return; "
           "star: final evaluation (the run's score); one line per seed.", "",
           "![Learning curves](learning_curves.png)", ""]  # fmt: skip
    cols = [c for c in MANIFEST_COLUMNS if any(m.get(c) for m in manifests)]
    md += ["## Runs (from manifest.json)", "", f"Run folders under `{runs_dir}`.", ""]
    md += [_md_table(cols, [[m.get(c, "") or "" for c in cols] for m in manifests]), ""]
    notes = data.notes + curve_notes
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(md)
