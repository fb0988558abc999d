"""Agent against agent in the reproduction report: REM vs IRIS (any two agents of
rem.config.AGENTS whose own variants are in the score table), twice: as rerun here, under one
protocol (the same env, evaluation and score rule: the presets share them), and as published
(each paper under its own protocol; the records of results/published/protocols.yaml say
where the two published protocols differ).

    pairs = compare_agents(ours_raw, published_raw, refs, cfg, records)
    md = agents_markdown(pairs)          # the report's "Agent against agent" section

ours_raw / published_raw: variant -> raw `Scores` (the per-variant comparisons' sets). Each
pair is scored on the games that all four sets cover; human-normalised aggregates with 95%
stratified-bootstrap CIs and P(first > second), both as in the rest of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from rem.config import AGENTS
from rem.results.protocols import records as P
from rem.results.render import tables
from rem.results.settings import ResultsConfig
from rem.results.stats.aggregates import METRIC_LABELS, METRICS
from rem.results.stats.bootstrap import Interval, aggregate_intervals, improvement_intervals
from rem.results.stats.scores import normalize
from rem.results.stats.types import References, Scores


@dataclass
class AgentPair:
    first: str  # an agent's own variant, e.g. rem
    second: str  # e.g. iris
    games: tuple[str, ...]
    intervals: dict[str, Interval]  # "ours (rem)", "ours (iris)", "published (rem)", ...
    ours_improvement: Interval  # P(ours first > ours second)
    published_improvement: Interval  # P(published first > published second)
    published_protocol_lines: list[str] = field(default_factory=list)
    published_protocols_known: bool = False  # protocols.yaml was read

    def names(self, side: str) -> tuple[str, str]:
        return f"{side} ({self.first})", f"{side} ({self.second})"


def compare_agents(
    ours: dict[str, Scores],
    published: dict[str, Scores],
    refs: References,
    cfg: ResultsConfig,
    records: P.Protocols | None = None,
) -> list[AgentPair]:
    """Every pair of agents (registry order) with ours and published scores on common games."""
    agents = [a for a in AGENTS if a in ours and a in published]
    pairs = []
    for first, second in combinations(agents, 2):
        sets = (ours[first], ours[second], published[first], published[second])
        games = tuple(g for g in refs.games if all(g in s.games for s in sets))
        if not games:
            continue
        hns = {
            f"{side} ({a})": normalize(refs, src[a].subset(games).renamed(f"{side} ({a})"))
            for side, src in (("ours", ours), ("published", published))
            for a in (first, second)
        }
        improvement = improvement_intervals(
            {
                side: (hns[f"{side} ({first})"], hns[f"{side} ({second})"])
                for side in ("ours", "published")
            },
            cfg.reps_improvement,
            cfg.seed,
        )
        pair = AgentPair(
            first,
            second,
            games,
            aggregate_intervals(hns, cfg.reps_aggregates, cfg.seed),
            improvement["ours"],
            improvement["published"],
        )
        if records is not None:
            ref = records.for_file(AGENTS[first].published, f"published ({first})")
            other = records.for_file(AGENTS[second].published, f"published ({second})")
            pair.published_protocol_lines = P.mismatch_lines(ref, [other])
            pair.published_protocols_known = True
        pairs.append(pair)
    return pairs


def improvement_rows(pairs: list[AgentPair]) -> list[list[object]]:
    """Rows of probability_of_improvement.csv: pair, estimate, ci_low, ci_high."""
    rows: list[list[object]] = []
    for p in pairs:
        for side, iv in (("ours", p.ours_improvement), ("published", p.published_improvement)):
            a, b = p.names(side)
            rows.append([f"{a},{b}", float(iv.estimate[0]), float(iv.low[0]), float(iv.high[0])])
    return rows


def agents_markdown(pairs: list[AgentPair]) -> list[str]:
    """The report section: per pair a metric table (rerun here | published) and P(first >
    second) both ways, with where the published protocols differ."""
    md: list[str] = []
    for p in pairs:
        a, b = p.first, p.second
        md += [
            f"## Agent against agent: {a} vs {b} ({len(p.games)} games: {', '.join(p.games)})",
            "",
        ]
        md += [
            "Rerun here: both agents trained and scored by this pipeline under one protocol "
            "(the same env, evaluation episodes and score rule). Published: each paper's own "
            "runs, under its own protocol.",
            "",
        ]
        header = ["Metric", f"ours {a}", f"ours {b}", f"published {a}", f"published {b}"]
        rows = []
        for k, m in enumerate(METRICS):
            cells = [
                tables.format_interval(p.intervals[name], k, m)
                for side in ("ours", "published")
                for name in p.names(side)
            ]
            rows.append([METRIC_LABELS[m], *cells])
        md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        for side, iv in (
            ("rerun here", p.ours_improvement),
            ("published", p.published_improvement),
        ):
            md.append(
                f"- P({a} run > {b} run), {side}: **{iv.estimate[0]:.3f}** "
                f"[{iv.low[0]:.3f}, {iv.high[0]:.3f}]"
            )
        md.append("")
        if p.published_protocol_lines:
            md += [f"The published runs were measured differently ({a} vs {b}):", ""]
            md += [f"- {line}" for line in p.published_protocol_lines] + [""]
        elif p.published_protocols_known:
            md += [
                f"The published {a} and {b} runs agree on every recorded protocol field "
                "(`results/published/protocols.yaml`).",
                "",
            ]
    return md
