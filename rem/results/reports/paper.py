"""The paper's comparisons regenerated from the published scores: each study is computed
into a `Study` (scores, intervals, protocols, provenance), then rendered into files.

main:      SimPLe, DreamerV3, TWM, STORM, IRIS and REM on the 26 Atari 100k games (+ any
           extra baseline the config names), aggregates with CIs, per-game table, IQM
           headline, performance profiles and P(REM > baseline).
ablations: REM and its five ablations on the 8-game subset, the same outputs plus the
           summary figure; also REM vs every ablation on all games where it has runs
           (no-pop covers 26 games with 3 to 5 runs: the ragged case).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rem.results.protocols import records as P
from rem.results.render import figures, tables
from rem.results.render.paths import display_path
from rem.results.reports.studies import (
    ABLATIONS,
    EXTRA_COLOURS,
    MAIN,
    REFERENCE,
    Algorithm,
    extra_file,
    study_outputs,
)
from rem.results.reports.written import Written
from rem.results.score_files import load_references, load_scores
from rem.results.settings import ResultsConfig
from rem.results.stats.bootstrap import (
    aggregate_intervals,
    improvement_intervals,
    profile_intervals,
)
from rem.results.stats.scores import normalize
from rem.results.stats.types import References, ScoreFileError, Scores
from rem.utils.atomic import atomic_write_text

TAUS = np.linspace(0.0, 8.0, 201)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("rliable", "numpy", "scipy", "matplotlib"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def main_algorithms(cfg: ResultsConfig) -> tuple[list[Algorithm], list[str]]:
    """The paper's algorithms plus the configured extras; also the extras that are absent."""
    algos = list(MAIN)
    missing = []
    taken = {a.label for a in MAIN}
    for i, name in enumerate(cfg.baselines_extra):
        if name in taken:
            raise ScoreFileError(
                f"results.baselines_extra: {name!r} clashes with an algorithm of the paper's "
                "comparison; rename the file"
            )
        if not cfg.extra_path(name).is_file():
            missing.append(name)
            continue
        algos.append(Algorithm(name, extra_file(name), EXTRA_COLOURS[i % len(EXTRA_COLOURS)]))
    # The reference goes last, as in the paper's figures.
    algos.sort(key=lambda a: a.label == REFERENCE)
    return algos, missing


def _load(
    cfg: ResultsConfig, algos: list[Algorithm], games: tuple[str, ...], known: tuple[str, ...]
) -> dict[str, Scores]:
    pub = Path(cfg.published_dir)
    return {
        a.label: load_scores(pub / a.file, name=a.label, known_games=known, required_games=games)
        for a in algos
    }


def published_protocols(cfg: ResultsConfig, algos: list[Algorithm]) -> tuple[dict, list[str]]:
    """{label: Protocol} for a study's algorithms, and notes (e.g. no protocols.yaml)."""
    pub = Path(cfg.published_dir)
    if not (pub / P.PROTOCOLS_FILE).is_file():
        why = f"no {P.PROTOCOLS_FILE} in {display_path(pub)}: protocols not recorded"
        return {a.label: P.unknown_protocol(a.label, why) for a in algos}, [why]
    records = P.load_protocols(pub)
    return {a.label: records.for_file(a.file, a.label) for a in algos}, [
        f"Normalisation tables: {records.reference_note()}."
    ]


class StudyProtocols:
    """The protocol comparison of one study: REM against every other algorithm."""

    def __init__(
        self, cfg: ResultsConfig, algos: list[Algorithm], title: str, prefix: str = ""
    ) -> None:
        self.prefix = prefix  # output file prefix of the study ("" or "ablations_")
        self.records, self.notes = published_protocols(cfg, algos)
        self.reference = self.records[REFERENCE]
        self.others = [self.records[a.label] for a in algos if a.label != REFERENCE]
        self.title = title

    @property
    def warning(self) -> P.ProtocolWarning:
        """The mismatches for the terminal (the study's files carry them too)."""
        return P.ProtocolWarning(self.title, tuple(P.mismatch_lines(self.reference, self.others)))

    def markdown(self) -> str:
        section = P.markdown_section(self.reference, self.others)
        section = section.replace("`protocols.md`", f"`{self.prefix}protocols.md`")
        return "\n" + section + "".join(f"\n{n}\n" for n in self.notes)

    def footer(self) -> list[str]:
        return P.short_summary(self.reference, self.others)

    def latex(self) -> str:
        lines = P.mismatch_lines(self.reference, self.others)
        if not lines:
            return ""
        return "Protocol differences: " + " ".join(line + "." for line in lines)

    def page(self, study: str) -> str:
        protocols = [self.reference, *self.others]
        return "\n".join([
            f"# Evaluation protocols: {study}", "",
            "Every score compared in this study, with the protocol it was measured under "
            "(`results/published/protocols.yaml`). Numbers measured under different "
            "protocols are not directly comparable; read the differences below with the "
            "tables.", "",
            P.protocol_table(protocols, REFERENCE),
            P.markdown_section(self.reference, self.others),
            *[f"{n}\n" for n in self.notes],
            "## Where each value is stated", "",
            P.sources_markdown(protocols),
        ])  # fmt: skip

    def rows(self) -> list[list[str]]:
        return P.mismatch_rows(self.reference, self.others)

    def write(self, out: Path, study: str) -> None:
        """<prefix>protocols.md (the full records) and <prefix>protocol_mismatches.csv."""
        atomic_write_text(out / f"{self.prefix}protocols.md", self.page(study))
        atomic_write_text(
            out / f"{self.prefix}protocol_mismatches.csv", tables.csv_text(self.rows())
        )

    def stamp(self, fig):
        """A figure footer naming, per algorithm, the fields measured differently."""
        return figures.add_footer(
            fig,
            self.footer(),
            f"Protocol differences from {REFERENCE} (see {self.prefix}protocols.md):",
        )


def _provenance(
    cfg: ResultsConfig,
    algos: list[Algorithm],
    raw: dict[str, Scores],
    missing: list[str],
    protocols: StudyProtocols,
) -> str:
    pub = Path(cfg.published_dir)
    doc = {
        "generated_by": "python -m rem.results paper",
        "seed": cfg.seed,
        "reps": {
            "aggregates": cfg.reps_aggregates,
            "profiles": cfg.reps_profiles,
            "probability_of_improvement": cfg.reps_improvement,
        },
        "confidence": 0.95,
        "method": "stratified bootstrap over runs per game, percentile CIs (rliable)",
        "inputs": {
            a.label: {
                "file": a.file,
                "sha256": _sha256(pub / a.file),
                "runs_per_game": raw[a.label].run_counts(),
            }
            for a in algos
        },
        "references": {f: _sha256(pub / f) for f in ("RANDOM.json", "HUMAN.json")},
        "missing_baselines": {m: display_path(cfg.extra_path(m)) for m in missing},
        "protocol_mismatches": P.mismatch_lines(protocols.reference, protocols.others),
        "protocol_notes": protocols.notes,
        "versions": _versions(),
    }
    return json.dumps(doc, indent=2) + "\n"


def _missing_note(missing: dict[str, str]) -> str:
    """missing: absent extra baseline -> the path where it was expected."""
    if not missing:
        return ""
    items = ", ".join(f"{m} (expected {path})" for m, path in missing.items())
    return f"\n**Missing baselines** listed in `results.baselines_extra` but not found: {items}.\n"


def _intervals(cfg: ResultsConfig, hns: dict, others: list[str]) -> tuple:
    """A study's stratified-bootstrap intervals: aggregates, performance profiles, and
    P(REM > other) for each other algorithm."""
    agg = aggregate_intervals(hns, cfg.reps_aggregates, cfg.seed)
    profiles = profile_intervals(hns, TAUS, cfg.reps_profiles, cfg.seed)
    pairs = {f"{REFERENCE},{b}": (hns[REFERENCE], hns[b]) for b in others}
    return agg, profiles, improvement_intervals(pairs, cfg.reps_improvement, cfg.seed)


@dataclass
class Study:
    """One study computed from the published scores, before anything is written: the scores,
    every interval, the protocol comparison and the provenance record."""

    name: str  # "main" or "ablations"
    prefix: str  # output file prefix: "" or "ablations_"
    algos: list[Algorithm]
    games: tuple[str, ...]
    refs: References
    raw: dict[str, Scores]
    protocols: StudyProtocols
    agg: dict
    profiles: dict
    poi: dict
    provenance: str
    missing: dict[str, str] = field(default_factory=dict)  # absent extra -> expected path
    wide: dict[str, Scores] = field(default_factory=dict)  # ablations beyond the subset
    wide_agg: dict = field(default_factory=dict)

    @property
    def others(self) -> list[str]:
        return [a.label for a in self.algos if a.label != REFERENCE]

    @property
    def colours(self) -> dict[str, str]:
        return figures.palette({a.label: a.colour for a in self.algos})


def compute_main(cfg: ResultsConfig) -> Study:
    """REM against every baseline of the paper (and the configured extras) on all games."""
    refs = load_references(cfg.published_dir)
    algos, missing = main_algorithms(cfg)
    raw = _load(cfg, algos, refs.games, refs.games)
    hns = {name: normalize(refs, s) for name, s in raw.items()}
    protocols = StudyProtocols(cfg, algos, "main comparison (REM vs each baseline)")
    others = [a.label for a in algos if a.label != REFERENCE]
    agg, profiles, poi = _intervals(cfg, hns, others)
    return Study(
        name="main",
        prefix="",
        algos=algos,
        games=refs.games,
        refs=refs,
        raw=raw,
        protocols=protocols,
        agg=agg,
        profiles=profiles,
        poi=poi,
        provenance=_provenance(cfg, algos, raw, missing, protocols),
        missing={m: display_path(cfg.extra_path(m)) for m in missing},
    )


def compute_ablations(cfg: ResultsConfig) -> Study:
    """REM against each of its ablations on the configured subset, and beyond it where an
    ablation has runs on more games."""
    refs = load_references(cfg.published_dir)
    games = _ablation_games(cfg, refs.games)
    algos = list(ABLATIONS)
    raw = _load(cfg, algos, games, refs.games)
    hns = {name: normalize(refs, s) for name, s in raw.items()}
    protocols = StudyProtocols(cfg, algos, "ablations (REM vs each ablation)", "ablations_")
    agg, profiles, poi = _intervals(cfg, hns, [a.label for a in algos if a.label != REFERENCE])
    wide = _beyond_subset(cfg, algos, games, refs)
    return Study(
        name="ablations",
        prefix="ablations_",
        algos=algos,
        games=games,
        refs=refs,
        raw=raw,
        protocols=protocols,
        agg=agg,
        profiles=profiles,
        poi=poi,
        provenance=_provenance(cfg, algos, raw, [], protocols),
        wide=wide,
        wide_agg=aggregate_intervals(wide, cfg.reps_aggregates, cfg.seed) if wide else {},
    )


def render_main(study: Study, out: Path) -> Written:
    """The main comparison's tables, figures, protocol pages and provenance into `out`."""
    warnings: list[P.ProtocolWarning | str] = [
        f"rem.results: baseline {m!r} is listed in results.baselines_extra but {path} does "
        "not exist; leaving it out"
        for m, path in study.missing.items()
    ]
    out.mkdir(parents=True, exist_ok=True)
    n = len(study.games)
    note = _missing_note(study.missing) + study.protocols.markdown()
    tables.write_aggregates_csv(out / "aggregates.csv", study.agg)
    atomic_write_text(
        out / "aggregates.md",
        tables.aggregates_markdown(
            study.agg,
            f"Aggregate human-normalised scores on the {n} Atari 100k games: point estimate "
            "[95% stratified-bootstrap CI].",
        )
        + note,
    )
    table = tables.PerGameTable(study.raw, study.refs, study.agg, study.games)
    table.write_csv(out / "per_game.csv")
    caption = f"Mean raw score per game (Atari 100k, {n} games); aggregates of human-normalised scores below."
    atomic_write_text(out / "per_game.md", table.markdown(caption) + note)
    atomic_write_text(
        out / "per_game.tex", table.latex(caption, "tab:atari100k", study.protocols.latex())
    )
    _write_intervals_and_provenance(study, out)
    colours = study.colours
    save = _saver(study, out)
    save(figures.aggregates_figure(study.agg, colours), "aggregates")
    save(figures.iqm_figure(study.agg, colours, REFERENCE), "iqm")
    save(figures.profile_figure(study.profiles, TAUS, colours), "performance_profile")
    save(
        figures.improvement_figure(study.poi, [colours[b] for b in study.others]),
        "probability_of_improvement",
    )
    return Written([out / f for f in study_outputs("main")], [*warnings, study.protocols.warning])


def render_ablations(study: Study, out: Path) -> Written:
    """The ablation study's tables, figures (with the summary), protocol pages and
    provenance into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    protocols = study.protocols
    tables.write_aggregates_csv(out / "ablations_aggregates.csv", study.agg)
    tables.write_aggregates_csv(out / "ablations_all_games_aggregates.csv", study.wide_agg)
    atomic_write_text(
        out / "ablations_aggregates.md",
        _ablations_markdown(study.games, study.agg, study.wide, study.wide_agg)
        + protocols.markdown(),
    )
    table = tables.PerGameTable(study.raw, study.refs, study.agg, study.games)
    table.write_csv(out / "ablations_per_game.csv")
    caption = f"Ablations: mean raw score per game on the {len(study.games)}-game subset; aggregates of human-normalised scores below."
    atomic_write_text(out / "ablations_per_game.md", table.markdown(caption) + protocols.markdown())
    atomic_write_text(
        out / "ablations_per_game.tex", table.latex(caption, "tab:ablations", protocols.latex())
    )
    _write_intervals_and_provenance(study, out)
    colours = study.colours
    save = _saver(study, out)
    save(figures.aggregates_figure(study.agg, colours), "ablations_aggregates")
    save(figures.profile_figure(study.profiles, TAUS, colours), "ablations_performance_profile")
    save(
        figures.improvement_figure(study.poi, [colours[b] for b in study.others]),
        "ablations_probability_of_improvement",
    )
    save(figures.summary_figure(study.poi, study.agg, colours, REFERENCE), "ablations_summary")
    return Written([out / f for f in study_outputs("ablations")], [protocols.warning])


def _write_intervals_and_provenance(study: Study, out: Path) -> None:
    """The files both studies write alike: P(X > Y), performance profiles, provenance and
    the protocol pages."""
    prefix = study.prefix
    tables.write_interval_csv(out / f"{prefix}probability_of_improvement.csv", "pair", study.poi)
    tables.write_profiles_csv(out / f"{prefix}performance_profile.csv", TAUS, study.profiles)
    atomic_write_text(out / f"{prefix}provenance.json", study.provenance)
    study.protocols.write(out, "main comparison" if study.name == "main" else "ablations")


def _saver(study: Study, out: Path):
    """A figure saver that stamps the study's protocol differences on each figure."""

    def save(fig, stem: str) -> None:
        figures.save(study.protocols.stamp(fig), out, stem)

    return save


def _ablation_games(cfg: ResultsConfig, known: tuple[str, ...]) -> tuple[str, ...]:
    """The configured ablation subset; ScoreFileError names a game that does not exist."""
    games = tuple(cfg.ablation_games)
    unknown = [g for g in games if g not in known]
    if unknown:
        raise ScoreFileError(
            f"results.ablation_games: unknown games {unknown}; valid games are {', '.join(known)}"
        )
    return games


def _beyond_subset(
    cfg: ResultsConfig, algos: list[Algorithm], games: tuple[str, ...], refs: References
) -> dict[str, Scores]:
    """REM vs each ablation on every game where the ablation has runs beyond the subset
    (ragged for no-pop): {"<label> (<n> games)": human-normalised scores}."""
    known = refs.games
    wide = {}
    for a in algos[1:]:
        path = Path(cfg.published_dir) / a.file
        full = load_scores(path, name=a.label, known_games=known, required_games=None)
        if set(full.games) > set(games):
            rem = _load(cfg, algos[:1], full.games, known)[REFERENCE]
            wide[f"{REFERENCE} ({len(full.games)} games)"] = normalize(refs, rem)
            wide[f"{a.label} ({len(full.games)} games)"] = normalize(refs, full)
    return wide


def _ablations_markdown(
    games: tuple[str, ...], agg: dict, wide: dict[str, Scores], wide_agg: dict
) -> str:
    """The aggregates on the subset, then (if any) on all the games the ablations cover."""
    md = tables.aggregates_markdown(
        agg,
        f"Ablations on the {len(games)}-game subset ({', '.join(games)}): human-normalised "
        "aggregates, point estimate [95% stratified-bootstrap CI].",
    )
    if wide_agg:
        counts = "; ".join(
            tables.run_note({k: s}).removeprefix("Runs: ").rstrip(".") for k, s in wide.items()
        )
        md += "\n" + tables.aggregates_markdown(
            wide_agg,
            "REM vs ablations with runs beyond the subset, on all the games they cover. Run "
            f"counts differ per game ({counts}); each game keeps equal weight "
            "(see rem/results/stats/aggregates.py).",
        )
    return md


def run_paper(
    cfg: ResultsConfig, out: str | Path, studies: tuple[str, ...] = ("main", "ablations")
) -> Written:
    """The studies' files into `out`; their warnings are returned for the caller to print."""
    out = Path(out)
    written = Written()
    for study in studies:
        if study == "main":
            written += render_main(compute_main(cfg), out)
        elif study == "ablations":
            written += render_ablations(compute_ablations(cfg), out)
        else:
            raise ValueError(f"unknown study {study!r}; expected main or ablations")
    return written
