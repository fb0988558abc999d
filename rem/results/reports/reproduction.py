"""Reproduction report: the pipeline's own runs against the published scores.

Inputs: the workflow's tidy score table (CSV: variant, game, seed, raw_score, hns,
episodes), the run folders (`<runs_dir>/<variant>/<game>/<seed>/` with metrics.jsonl and
manifest.json) and the published scores. For each variant with a published counterpart
(an agent's own variant -> its file, rem -> REM.json, iris -> IRIS.json; <name> ->
ablations/ablation-<name>.json) on the games both cover:
aggregates with CIs side by side, P(ours > published) with its CI, per metric a plain
verdict (do the 95% CIs overlap?), and the evaluation-protocol fields on which our runs
(their manifests) and the published runs (results/published/protocols.yaml) differ. Then
learning curves with the published final scores beside them, and the run manifests. With
two agents' own variants (rem and iris) in the table: agent against agent, rerun here under
one protocol and as published (rem.results.reports.agents).

`write_partial_report` is the preliminary version for a sweep still running: it reads the
run folders directly, aggregates whatever runs have finished, labels every table, figure
and page PRELIMINARY with its coverage (N of M runs per game and variant) and writes to its
own folder. File names in the reports are relative to the project root (rem.results.render.paths).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rem.results.protocols import records as P
from rem.results.render import figures, tables
from rem.results.render.paths import display_path
from rem.results.reports.agents import AgentPair, agents_markdown, compare_agents, improvement_rows
from rem.results.reports.studies import published_name, study_outputs
from rem.results.reports.tidy import TIDY_COLUMNS
from rem.results.reports.written import Written
from rem.results.score_files import load_references, load_scores
from rem.results.settings import ResultsConfig
from rem.results.stats.aggregates import METRIC_LABELS, METRICS
from rem.results.stats.bootstrap import Interval, aggregate_intervals, improvement_intervals
from rem.results.stats.checks import run_count_note
from rem.results.stats.scores import normalize
from rem.results.stats.types import References, ScoreFileError, Scores
from rem.runs import layout
from rem.runs.files import (
    ManifestError,
    ScoreError,
    finished_runs,
    read_manifest,
    read_metrics,
    read_score,
)
from rem.utils.atomic import atomic_write_text
from rem.utils.jsonl import JsonlError

# metrics.jsonl keys, most preferred first: the reference's names, then what rem train logs.
TEST_RETURN_KEYS = ("test_dataset/return", "test/return_mean", "test/return")
TRAIN_RETURN_KEYS = ("train_dataset/return", "collection/return", "train/return")
PRELIMINARY = "preliminary"
ORIGIN = "`results/published/protocols.yaml` and the run manifests"


class ReportError(ValueError):
    """The tidy table or a run folder cannot be used; the message names the file and row."""


@dataclass(frozen=True)
class Run:
    """One run's final score as a row of the tidy score table (rem.results.reports.tidy):
    raw and human-normalised score and the episodes behind them, read from the table, never
    from the run folder (that is the learning report's `RunRecord`)."""

    variant: str
    game: str
    seed: int
    raw: float
    hns: float
    episodes: int

    @property
    def key(self) -> layout.RunKey:
        return layout.RunKey(self.variant, self.game, self.seed)


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
    ours_protocol: P.Protocol | None = None
    published_protocol: P.Protocol | None = None

    def protocol_lines(self) -> list[str]:
        if self.ours_protocol is None or self.published_protocol is None:
            return []
        return P.mismatch_lines(self.published_protocol, [self.ours_protocol])


@dataclass
class ReportData:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    agent_pairs: list[AgentPair] = field(
        default_factory=list
    )  # REM vs IRIS (rem.results.reports.agents)

    def add_agent_pairs(self, refs: References, cfg: ResultsConfig) -> None:
        """Agent against agent, rerun here and as published, from the comparisons' sets."""
        ours = {c.variant: c.ours for c in self.comparisons}
        published = {c.variant: c.published for c in self.comparisons}
        pub_dir = Path(cfg.published_dir)
        records = P.load_protocols(pub_dir) if (pub_dir / P.PROTOCOLS_FILE).is_file() else None
        self.agent_pairs = compare_agents(ours, published, refs, cfg, records)


def compare_runs(runs: list[Run], refs: References, cfg: ResultsConfig) -> ReportData:
    """Our runs of each variant against its published scores."""
    data = ReportData()
    pub_dir = Path(cfg.published_dir)
    for variant in sorted({r.variant for r in runs}):
        mine = [r for r in runs if r.variant == variant]
        path = pub_dir / published_name(variant)
        if not path.is_file():
            data.notes.append(
                f"{variant}: no published scores ({display_path(path)} does not exist)."
            )
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
        hns = {s.name: normalize(refs, s) for s in (ours_raw, pub_raw)}
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


# ------------------------------------------------------------------ protocols


def attach_protocols(
    data: ReportData, runs: list[Run], runs_dir: Path, cfg: ResultsConfig
) -> list[str]:
    """Our runs' protocol (manifests) and the published one for every comparison; returns
    notes (runs without a readable manifest, no protocols.yaml)."""
    notes = []
    pub_dir = Path(cfg.published_dir)
    records = None
    if (pub_dir / P.PROTOCOLS_FILE).is_file():
        records = P.load_protocols(pub_dir)
    else:
        notes.append(
            f"No {P.PROTOCOLS_FILE} in {display_path(pub_dir)}: the published protocols are unknown."
        )
    for c in data.comparisons:
        per_run, missing = [], []
        for r in sorted(runs, key=lambda r: (r.game, r.seed)):
            if r.variant != c.variant or r.game not in c.games:
                continue
            man = P.run_manifest(layout.run_path(runs_dir, r.key))
            if man is None:
                missing.append(f"{r.game}/{r.seed}")
                continue
            per_run.append((f"{r.game}/{r.seed}", P.run_fields(man, r.game, r.episodes)))
        if missing:
            notes.append(
                f"{c.variant}: no readable manifest.json for {', '.join(missing)}; the protocol "
                "of our runs comes from the others."
            )
        c.ours_protocol = P.merge_runs(
            c.ours.name, per_run, f"manifest.json of {len(per_run)} run(s) under the runs folder"
        )
        label = c.published.name
        name = published_name(c.variant)
        c.published_protocol = (
            records.for_file(name, label)
            if records is not None
            else P.unknown_protocol(label, f"no {P.PROTOCOLS_FILE}")
        )
    return notes


# ------------------------------------------------------------------ run folders


def read_curves(
    metrics_path: Path, report_dir: Path | None = None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """{'test'|'train'|'final': (epochs, returns)} from metrics.jsonl + a note on what is missing.

    'final' is the trainer's final evaluation (the score of the run), one point; logs
    without it get it from the run's score file (`_write`), at the last logged epoch
    (`curves["last"]`).
    """
    where = display_path(metrics_path, report_dir)
    if not metrics_path.is_file():
        return {}, f"{where}: not found"
    points: dict[str, list[tuple[int, float]]] = {"test": [], "train": [], "final": []}
    last = 0
    try:
        records = read_metrics(metrics_path)  # a torn last line (a kill, a run writing) skipped
    except JsonlError as err:
        return {}, f"{where}:{err.line}: not a JSON object (only the last line can be unfinished)"
    for rec in records:
        if not isinstance(rec.get("epoch"), int):
            continue
        last = max(last, rec["epoch"])
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
    if last:
        curves["last"] = (np.array([last]), np.array([np.nan]))
    notes = []
    for label, keys in (("test", TEST_RETURN_KEYS), ("train", TRAIN_RETURN_KEYS)):
        if label not in curves:
            notes.append(f"no {label} return (looked for {', '.join(keys)})")
    return curves, (f"{where}: " + "; ".join(notes)) if notes else ""


def _short(value: object) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def manifest_row(run_dir: Path, run: Run) -> dict[str, str]:
    row = {"variant": run.variant, "game": run.game, "seed": str(run.seed)}
    try:
        man = read_manifest(run_dir)
    except ManifestError:
        man = None
        row["note"] = f"{layout.MANIFEST} is not valid JSON"
    if man is None:
        row.setdefault("note", f"no {layout.MANIFEST}")
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


# ------------------------------------------------------------------ coverage (partial report)


@dataclass
class Coverage:
    """Finished runs against the runs the config expects, per variant and game."""

    expected: list[layout.RunKey]
    finished: set[layout.RunKey]

    def cell(self, variant: str, game: str) -> tuple[int, int]:
        keys = [k for k in self.expected if k.variant == variant and k.game == game]
        return sum(k in self.finished for k in keys), len(keys)

    def variants(self) -> list[str]:
        return sorted({k.variant for k in self.expected})

    def games(self, variant: str) -> list[str]:
        return sorted({k.game for k in self.expected if k.variant == variant})

    def totals(self, variant: str | None = None) -> tuple[int, int]:
        keys = [k for k in self.expected if variant is None or k.variant == variant]
        return sum(k in self.finished for k in keys), len(keys)

    def summary(self) -> str:
        n, m = self.totals()
        parts = [f"{v} {'{}/{}'.format(*self.totals(v))}" for v in self.variants()]
        return f"{n} of {m} runs finished: " + ", ".join(parts)

    def table(self) -> str:
        rows = []
        for v in self.variants():
            cells = [f"{g} {'{} of {}'.format(*self.cell(v, g))}" for g in self.games(v)]
            rows.append([v, "{} of {}".format(*self.totals(v)), "; ".join(cells)])
        return _md_table(["variant", "runs finished", "per game (N of M)"], rows)

    def rows(self) -> list[list[object]]:
        out: list[list[object]] = [["variant", "game", "finished", "expected", "status"]]
        for v in self.variants():
            for g in self.games(v):
                n, m = self.cell(v, g)
                out.append([v, g, n, m, PRELIMINARY])
        return out


# ------------------------------------------------------------------ writing


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _csv_text(rows: list[list[object]]) -> str:
    return tables.csv_text(
        [[tables.num_text(x) if isinstance(x, float) else x for x in r] for r in rows]
    )


def _with_status(
    rows: list[list[object]], coverage: Coverage | None, fn=None
) -> list[list[object]]:
    """Partial reports: every CSV row says `preliminary` and, where it has one, its coverage."""
    if coverage is None:
        return rows
    out = [rows[0] + ["status", "coverage"]]
    for r in rows[1:]:
        out.append(r + [PRELIMINARY, fn(r) if fn else coverage.summary()])
    return out


def report_files(partial: bool) -> list[str]:
    return study_outputs("partial" if partial else "report")


def write_reproduction_report(
    scores_csv: str | Path, runs_dir: str | Path, out: str | Path, cfg: ResultsConfig
) -> Written:
    """The final report from the workflow's tidy score table."""
    refs = load_references(cfg.published_dir)
    runs = read_tidy(scores_csv, refs)
    inputs = ReportInputs(runs, Path(runs_dir), Path(out), cfg, refs, Path(scores_csv))
    return render_report(compute_report(inputs))


def write_partial_report(
    runs_dir: str | Path,
    expected: list[layout.RunKey],
    out: str | Path,
    cfg: ResultsConfig,
    evaluations: str | Path | None = None,
) -> Written:
    """The preliminary report: whatever expected runs have finished, never waiting and never
    failing on the others; a finished run whose score file is unreadable is left out with a
    note. Writes scores.csv and coverage.csv next to the report."""
    runs_dir, out = Path(runs_dir), Path(out)
    if not runs_dir.is_dir():
        raise ReportError(f"{runs_dir}: runs folder not found (the workflow's runs_dir)")
    refs = load_references(cfg.published_dir)
    evals = Path(evaluations) if evaluations is not None else None
    done = finished_runs(runs_dir, expected, evals)
    runs, notes, finished = [], [], set()
    for key in done:
        path = layout.score_file(runs_dir, key, evals)
        try:
            raw, episodes = read_score(path, key)
        except ScoreError as err:
            notes.append(f"left out: {err}".replace(str(path), display_path(path)))
            continue
        runs.append(
            Run(key.variant, key.game, key.seed, raw, float(refs.hns(key.game, raw)), episodes)
        )
        finished.add(key)
    coverage = Coverage(expected, finished)
    out.mkdir(parents=True, exist_ok=True)
    tidy = [list(TIDY_COLUMNS)] + [
        [r.variant, r.game, r.seed, r.raw, r.hns, r.episodes] for r in sorted(runs, key=_order)
    ]
    atomic_write_text(
        out / "scores.csv", _csv_text(_with_status(tidy, coverage, _cov_fn(coverage, 0, 1)))
    )
    atomic_write_text(out / "coverage.csv", _csv_text(coverage.rows()))
    source = out / "scores.csv"
    inputs = ReportInputs(runs, runs_dir, out, cfg, refs, source, coverage, notes)
    return render_report(compute_report(inputs))


def _order(r: Run) -> tuple:
    return (r.variant, r.game, r.seed)


def _cov_fn(coverage: Coverage, vcol: int, gcol: int):
    def fn(row: list[object]) -> str:
        return "{} of {} runs".format(*coverage.cell(str(row[vcol]), str(row[gcol])))

    return fn


@dataclass
class ReportInputs:
    """What a reproduction report reads: our scored runs, their folders, the published
    references and settings, and where the report goes."""

    runs: list[Run]
    runs_dir: Path
    out: Path
    cfg: ResultsConfig
    refs: References
    source: Path  # the score table the runs come from
    coverage: Coverage | None = None  # set: a preliminary report
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        title = "reproduction report (ours vs published)"
        return title if self.coverage is None else "preliminary " + title


@dataclass
class Reproduction:
    """A reproduction report computed, before anything is written: the comparisons, the
    runs' curves and manifest rows, the notes and the protocol warning."""

    inputs: ReportInputs
    data: ReportData
    curves: dict[str, dict[str, list]]
    manifests: list[dict[str, str]]
    notes: list[str]

    @property
    def warning(self) -> P.ProtocolWarning:
        lines = [line for c in self.data.comparisons for line in c.protocol_lines()]
        return P.ProtocolWarning(self.inputs.title, tuple(lines))


def compute_report(inputs: ReportInputs) -> Reproduction:
    """Every figure of a report (final or, with `coverage`, preliminary), nothing written."""
    runs, cfg = inputs.runs, inputs.cfg
    data = compare_runs(runs, inputs.refs, cfg) if runs else ReportData()
    notes = inputs.notes + data.notes + attach_protocols(data, runs, inputs.runs_dir, cfg)
    data.add_agent_pairs(inputs.refs, cfg)
    curves, manifests, curve_notes = _run_curves(runs, inputs.runs_dir, inputs.out)
    return Reproduction(inputs, data, curves, manifests, notes + curve_notes)


def render_report(rep: Reproduction) -> Written:
    """Every file of a computed report into its `out`; its warning for the caller."""
    inputs, data = rep.inputs, rep.data
    coverage, out = inputs.coverage, inputs.out
    out.mkdir(parents=True, exist_ok=True)
    intervals = _write_tables(data, inputs.refs, coverage, out)
    man_rows = [list(MANIFEST_COLUMNS)] + [
        [m.get(col, "") for col in MANIFEST_COLUMNS] for m in rep.manifests
    ]
    atomic_write_text(
        out / "runs.csv",
        _csv_text(_with_status(man_rows, coverage, _cov_fn(coverage, 0, 1) if coverage else None)),
    )
    _write_figures(inputs.runs, data, rep.curves, intervals, coverage, out)
    atomic_write_text(out / "protocols.md", _protocols_page(data, coverage))
    atomic_write_text(out / "reproduction.md", _markdown(rep))
    return Written([out / f for f in report_files(coverage is not None)], [rep.warning])


def _per_game_rows(data: ReportData, refs: References) -> list[list[object]]:
    rows: list[list[object]] = [
        ["variant", "game", "ours_runs", "ours_raw", "ours_hns", "published_runs",
         "published_raw", "published_hns"]
    ]  # fmt: skip
    for c in data.comparisons:
        for g in c.games:
            o, p = c.ours.runs[g], c.published.runs[g]
            rows.append(
                [c.variant, g, len(o), float(np.mean(o)), float(np.mean(refs.hns(g, o))),
                 len(p), float(np.mean(p)), float(np.mean(refs.hns(g, p)))]
            )  # fmt: skip
    return rows


def _aggregate_rows(intervals: dict[str, Interval]) -> list[list[object]]:
    rows: list[list[object]] = [list(tables.AGGREGATE_COLUMNS)]
    for name, iv in intervals.items():
        for k, metric in enumerate(METRICS):
            rows.append([name, metric, float(iv.estimate[k]), float(iv.low[k]), float(iv.high[k])])
    return rows


def _improvement_rows(data: ReportData) -> list[list[object]]:
    rows: list[list[object]] = [["pair", "estimate", "ci_low", "ci_high"]]
    for c in data.comparisons:
        iv = c.improvement
        pair = f"{c.ours.name},{c.published.name}"
        rows.append([pair, float(iv.estimate[0]), float(iv.low[0]), float(iv.high[0])])
    return rows + improvement_rows(data.agent_pairs)


def _mismatch_rows(data: ReportData) -> list[list[object]]:
    rows: list[list[object]] = [
        ["variant", "source", "reference", "field", "value", "reference_value", "status"]
    ]
    for c in data.comparisons:
        if c.ours_protocol and c.published_protocol:
            for r in P.mismatch_rows(c.published_protocol, [c.ours_protocol])[1:]:
                rows.append([c.variant, *r])
    return rows


def _variant_cov(data: ReportData, coverage: Coverage | None):
    """Coverage cell of a row named by an interval or a pair: the runs of our variant."""
    by_variant = {f"ours ({c.variant})": c.variant for c in data.comparisons}

    def fn(row: list[object]) -> str:
        name = str(row[0]).split(",")[0]
        if coverage is None or name not in by_variant:
            return "published runs"
        return "{} of {} runs".format(*coverage.totals(by_variant[name]))

    return fn


def _write_tables(
    data: ReportData, refs: References, coverage: Coverage | None, out: Path
) -> dict[str, Interval]:
    """The comparison CSVs; returns the intervals of every score set compared."""
    intervals: dict[str, Interval] = {}
    for c in data.comparisons:
        intervals.update(c.intervals)
    variant_cov = _variant_cov(data, coverage)
    game_cov = _cov_fn(coverage, 0, 1) if coverage else None
    for name, rows, fn in (
        ("aggregates.csv", _aggregate_rows(intervals), variant_cov),
        ("probability_of_improvement.csv", _improvement_rows(data), variant_cov),
        ("per_game.csv", _per_game_rows(data, refs), game_cov),
        ("protocol_mismatches.csv", _mismatch_rows(data), None),
    ):
        atomic_write_text(out / name, _csv_text(_with_status(rows, coverage, fn)))
    return intervals


def _run_curves(
    runs: list[Run], runs_dir: Path, out: Path
) -> tuple[dict[str, dict[str, list]], list[dict[str, str]], list[str]]:
    """Per game and variant the (label, epochs, returns) curves of every run, the runs'
    manifest rows and notes on what their logs lack."""
    curves: dict[str, dict[str, list]] = {}
    manifests, notes = [], []
    for run in sorted(runs, key=_order):
        run_dir = layout.run_path(runs_dir, run.key)
        got, note = read_curves(run_dir / layout.METRICS, out)
        if note:
            notes.append(note)
        last = got.pop("last", None)
        if "final" not in got and last is not None:
            # The run's score (scores.json, as collected) at its last logged epoch.
            got["final"] = (last[0], np.array([run.raw]))
        for label, (ep, ret) in got.items():
            curves.setdefault(run.game, {}).setdefault(run.variant, []).append((label, ep, ret))
        manifests.append(manifest_row(run_dir, run))
    return curves, manifests, notes


def _published_finals(data: ReportData) -> dict[str, dict[str, np.ndarray]]:
    """game -> variant -> the published runs' final scores."""
    published: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for c in data.comparisons:
        for g in c.games:
            published[g][c.variant] = c.published.runs[g]
    return dict(published)


def _write_figures(
    runs: list[Run],
    data: ReportData,
    curves: dict[str, dict[str, list]],
    intervals: dict[str, Interval],
    coverage: Coverage | None,
    out: Path,
) -> None:
    """learning_curves.png and aggregates.png, with the protocol differences as a footer."""
    variants = sorted({r.variant for r in runs})
    colours = figures.palette({v: i for i, v in enumerate(variants)})
    fig_colours = figures.palette({name: i for i, name in enumerate(intervals)})
    footer = [line for c in data.comparisons
              for line in P.short_summary(c.published_protocol, [c.ours_protocol])
              if c.published_protocol and c.ours_protocol]  # fmt: skip

    def stamp(fig):
        fig = figures.add_footer(
            fig, footer, "Protocol differences, ours vs published (see protocols.md):"
        )
        return figures.preliminary(fig, coverage.summary()) if coverage is not None else fig

    if runs:
        curve_fig = figures.learning_curves_figure(curves, colours, _published_finals(data))
    else:
        curve_fig = figures.placeholder("No run has finished yet: nothing to plot.")
    figures.save_png(stamp(curve_fig), out, "learning_curves")
    figures.save_png(stamp(figures.aggregates_figure(intervals, fig_colours)), out, "aggregates")


def _protocols_page(data: ReportData, coverage: Coverage | None) -> str:
    head = "# Evaluation protocols: our runs and the published runs"
    md = [head + (" (PRELIMINARY)" if coverage else ""), ""]
    if coverage is not None:
        md += [f"**PRELIMINARY** ({coverage.summary()}).", ""]
    if not data.comparisons:
        md += ["No comparison with published scores in this report.", ""]
    for c in data.comparisons:
        if not (c.ours_protocol and c.published_protocol):
            continue
        md += [f"## {c.variant}", ""]
        md += [P.protocol_table([c.published_protocol, c.ours_protocol], c.published_protocol.name)]
        md += [
            P.markdown_section(c.published_protocol, [c.ours_protocol], "Differences", ORIGIN),
            "",
        ]
        md += [P.sources_markdown([c.ours_protocol, c.published_protocol])]
    return "\n".join(md) + "\n"


def _markdown(rep: Reproduction) -> str:
    """reproduction.md: the inputs, protocol warnings, one section per compared variant,
    the figures, the runs and the notes."""
    inputs, data = rep.inputs, rep.data
    md = _intro(inputs)
    md += _protocol_warnings(inputs.runs, data)
    for c in data.comparisons:
        md += _comparison_section(c, inputs.refs, inputs.coverage)
    md += agents_markdown(data.agent_pairs)
    md += _closing(inputs.runs_dir, inputs.out, rep.manifests, rep.notes)
    return "\n".join(md)


def _intro(inputs: ReportInputs) -> list[str]:
    source, out, runs, cfg, coverage = (
        inputs.source,
        inputs.out,
        inputs.runs,
        inputs.cfg,
        inputs.coverage,
    )
    variants = sorted({r.variant for r in runs})
    games = sorted({r.game for r in runs})
    seeds = sorted({r.seed for r in runs})
    md = ["# Reproduction report" + (" (PRELIMINARY)" if coverage else ""), ""]
    if coverage is not None:
        md += [
            f"**PRELIMINARY: {coverage.summary()}.** This page aggregates the runs that have "
            "finished so far and changes as the sweep goes on; the final report "
            f"(`{display_path(out.parent / 'report', out)}`) is written only when every run is done.",
            "",
            "### Coverage (finished runs of the expected runs)",
            "",
            coverage.table(),
            "",
        ]
    if not runs:
        return md + ["No run has finished yet; nothing to aggregate.", ""]
    return md + [
        f"Our runs: {len(runs)} from `{display_path(source, out)}` (variants {', '.join(variants)}; "
        f"games {', '.join(games)}; seeds {', '.join(map(str, seeds))}), compared with the "
        f"scores published with the REM paper (`{display_path(cfg.published_dir, out)}`). "
        "Human-normalised scores; 95% stratified-bootstrap CIs "
        f"({cfg.reps_aggregates} repetitions for aggregates, {cfg.reps_improvement} for "
        f"the probability of improvement, seed {cfg.seed}). With few runs or games the CIs "
        "are wide and say little; the verdicts only ask whether the intervals overlap.",
        "",
    ]


def _protocol_warnings(runs: list[Run], data: ReportData) -> list[str]:
    md: list[str] = []
    protocol_lines = [line for c in data.comparisons for line in c.protocol_lines()]
    if protocol_lines:
        md += ["**Protocol warnings** (fields on which our runs and the published runs were "
               "measured differently; details in `protocols.md`):", ""]  # fmt: skip
        md += [f"- {line}" for line in protocol_lines] + [""]
    elif data.comparisons:
        md += ["Protocols: our runs and the published runs agree on every recorded field "
               "(`protocols.md`).", ""]  # fmt: skip
    if runs and not data.comparisons:
        md += ["No variant of the score table has published scores on its games.", ""]
    return md


def _comparison_section(c: Comparison, refs: References, coverage: Coverage | None) -> list[str]:
    """One variant against its published runs: metrics with verdicts, protocol, P(ours >
    published) and the per-game means."""
    single = [g for g in c.games if len(c.ours.runs[g]) < 2]
    ngames = f"{len(c.games)} game{'s' if len(c.games) > 1 else ''}"
    md = [f"## {c.variant} ({ngames}: {', '.join(c.games)})", ""]
    if coverage is not None:
        md += [f"Coverage: {'{} of {}'.format(*coverage.totals(c.variant))} runs of "
               f"{c.variant} finished (PRELIMINARY).", ""]  # fmt: skip
    md += [_metric_table(c), ""]
    if c.ours_protocol and c.published_protocol:
        md += [
            P.markdown_section(c.published_protocol, [c.ours_protocol], "Protocol", ORIGIN),
            "",
        ]
    note = run_count_note({"ours": c.ours, "published": c.published})
    if note:
        md += [note, ""]
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
    return md + [_game_table(c, refs, coverage), ""]


def _metric_table(c: Comparison) -> str:
    ours, pub = c.intervals[c.ours.name], c.intervals[c.published.name]
    rows = []
    for k, m in enumerate(METRICS):
        rows.append([METRIC_LABELS[m], tables.format_interval(ours, k, m), tables.format_interval(pub, k, m),
                     verdict(ours, pub, k, m)])  # fmt: skip
    return _md_table(["Metric", "Ours", "Published", "Verdict"], rows)


def _game_table(c: Comparison, refs: References, coverage: Coverage | None) -> str:
    rows = []
    for g in c.games:
        o, q = c.ours.runs[g], c.published.runs[g]
        cov = f" of {coverage.cell(c.variant, g)[1]}" if coverage is not None else ""
        rows.append([g, f"{np.mean(o):.1f} (n={len(o)}{cov})", f"{np.mean(q):.1f} (n={len(q)})",
                     f"{np.mean(refs.hns(g, o)):.3f}", f"{np.mean(refs.hns(g, q)):.3f}"])  # fmt: skip
    return _md_table(["Game", "Ours raw", "Published raw", "Ours HNS", "Published HNS"], rows)


def _closing(runs_dir: Path, out: Path, manifests, notes: list[str]) -> list[str]:
    """The figures, the runs' manifests and the notes."""
    md = ["## Aggregates", "", "![Aggregates: ours vs published](aggregates.png)", ""]
    md += ["## Learning curves", "", "Solid: test return; dashed: train (collection) return; "
           "star: final evaluation (the run's score); one line per seed. Diamonds right of the "
           "last epoch: the published runs' final scores, their mean +- standard error as a "
           "band.", "", "![Learning curves](learning_curves.png)", ""]  # fmt: skip
    cols = [c for c in MANIFEST_COLUMNS if any(m.get(c) for m in manifests)]
    md += [
        "## Runs (from manifest.json)",
        "",
        f"Run folders under `{display_path(runs_dir, out)}`.",
        "",
    ]
    if manifests:
        md += [_md_table(cols, [[m.get(c, "") or "" for c in cols] for m in manifests]), ""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return md
