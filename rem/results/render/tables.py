"""Tables: CSV (full precision), Markdown and LaTeX (rounded, best entry in bold).

CSV goes through pandas (`DataFrame.to_csv`). Markdown and LaTeX are written here:
`DataFrame.to_markdown` pads every column to its widest cell and `Styler.to_latex` writes
another preamble, so the published tables would change bytes (measured on
results/paper/aggregates.md); `snakemake paper` keeps them byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rem.results.stats.aggregates import METRIC_LABELS, METRICS
from rem.results.stats.bootstrap import Interval
from rem.results.stats.types import References, Scores
from rem.utils.atomic import atomic_write_text

AGGREGATE_COLUMNS = ("algorithm", "metric", "estimate", "ci_low", "ci_high")
LOWER_IS_BETTER = {"optimality_gap"}


def num_text(x: float) -> str:
    """Shortest exact text for a float (repr); integers without '.0'."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def csv_text(rows: list[list[object]]) -> str:
    """Rows, the first one the header, as CSV text; cells written as given (numbers already
    formatted by `num_text` stay exact)."""
    header, *body = rows
    table = pd.DataFrame(body, columns=header, dtype=object)
    return table.to_csv(index=False, lineterminator="\n")


def write_aggregates_csv(path: Path, intervals: dict[str, Interval]) -> None:
    rows: list[list[object]] = [list(AGGREGATE_COLUMNS)]
    for name, iv in intervals.items():
        for k, metric in enumerate(METRICS):
            rows.append(
                [name, metric, num_text(iv.estimate[k]), num_text(iv.low[k]), num_text(iv.high[k])]
            )
    atomic_write_text(path, csv_text(rows))


def write_interval_csv(path: Path, key: str, intervals: dict[str, Interval]) -> None:
    """One row per key (e.g. an algorithm pair 'X,Y'): key, estimate, ci_low, ci_high."""
    rows: list[list[object]] = [[key, "estimate", "ci_low", "ci_high"]]
    for name, iv in intervals.items():
        rows.append([name, num_text(iv.estimate[0]), num_text(iv.low[0]), num_text(iv.high[0])])
    atomic_write_text(path, csv_text(rows))


def write_profiles_csv(path: Path, taus: np.ndarray, profiles: dict[str, Interval]) -> None:
    rows: list[list[object]] = [["algorithm", "tau", "estimate", "ci_low", "ci_high"]]
    for name, iv in profiles.items():
        for t, tau in enumerate(taus):
            rows.append(
                [
                    name,
                    num_text(tau),
                    num_text(iv.estimate[t]),
                    num_text(iv.low[t]),
                    num_text(iv.high[t]),
                ]
            )
    atomic_write_text(path, csv_text(rows))


def format_interval(iv: Interval, k: int, metric: str) -> str:
    if metric == "superhuman":
        return f"{iv.estimate[k]:.0f} [{iv.low[k]:.0f}, {iv.high[k]:.0f}]"
    return f"{iv.estimate[k]:.3f} [{iv.low[k]:.3f}, {iv.high[k]:.3f}]"


def aggregates_markdown(intervals: dict[str, Interval], caption: str) -> str:
    header = ["Algorithm"] + [
        METRIC_LABELS[m] + (" (lower is better)" if m in LOWER_IS_BETTER else "") for m in METRICS
    ]
    lines = [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, iv in intervals.items():
        cells = [name] + [format_interval(iv, k, m) for k, m in enumerate(METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_note(raw: dict[str, Scores]) -> str:
    """Say which algorithms have unequal or non-5 run counts (never hidden)."""
    notes = []
    for name, s in raw.items():
        counts = s.run_counts()
        values = sorted(set(counts.values()))
        if len(values) == 1:
            notes.append(f"{name}: {values[0]} runs per game")
        else:
            common = max(values, key=lambda v: sum(c == v for c in counts.values()))
            odd = ", ".join(f"{g} {c}" for g, c in counts.items() if c != common)
            notes.append(f"{name}: {common} runs per game except {odd}")
    return "Runs: " + "; ".join(notes) + "."


class PerGameTable:
    """Per-game mean raw scores with Random and Human, plus aggregate rows."""

    def __init__(
        self,
        raw: dict[str, Scores],
        refs: References,
        intervals: dict[str, Interval],
        games: tuple[str, ...],
    ) -> None:
        self.raw, self.refs, self.intervals, self.games = raw, refs, intervals, games
        self.names = list(raw)

    def write_csv(self, path: Path) -> None:
        header: list[object] = ["game", "Random", "Human"]
        for name in self.names:
            header += [name, f"{name} runs"]
        rows = [header]
        for g in self.games:
            row: list[object] = [g, num_text(self.refs.random[g]), num_text(self.refs.human[g])]
            for name in self.names:
                runs = self.raw[name].runs[g]
                row += [num_text(np.mean(runs)), len(runs)]
            rows.append(row)
        atomic_write_text(path, csv_text(rows))

    def _cells(self, bold) -> tuple[list[str], list[list[str]]]:
        def mark_best(texts: list[str], lower: bool = False) -> list[str]:
            # Compare what is printed, so that ties at the shown precision are all bold.
            values = [float(t) for t in texts]
            best = min(values) if lower else max(values)
            return [bold(t) if v == best else t for t, v in zip(texts, values)]

        header = ["Game", "Random", "Human", *self.names]
        body = []
        for g in self.games:
            means = [f"{np.mean(self.raw[n].runs[g]):.1f}" for n in self.names]
            cells = [g, f"{self.refs.random[g]:.1f}", f"{self.refs.human[g]:.1f}"]
            body.append(cells + mark_best(means))
        for k, metric in enumerate(METRICS):
            fmt = "{:.0f}" if metric == "superhuman" else "{:.3f}"
            values = [fmt.format(self.intervals[n].estimate[k]) for n in self.names]
            label = METRIC_LABELS[metric] + (
                " (lower is better)" if metric in LOWER_IS_BETTER else ""
            )
            body.append([label, "", ""] + mark_best(values, metric in LOWER_IS_BETTER))
        return header, body

    def markdown(self, caption: str) -> str:
        header, body = self._cells(lambda s: f"**{s}**")
        lines = [caption, "", "| " + " | ".join(header) + " |"]
        lines.append("|---|" + "---:|" * (len(header) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines += ["", run_note(self.raw)]
        return "\n".join(lines) + "\n"

    def latex(self, caption: str, label: str, note: str = "") -> str:
        """note: printed under the tabular (the study's protocol differences)."""

        def esc(s: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                         ("#", r"\#"), ("$", r"\$")):  # fmt: skip
                s = s.replace(a, b)
            return s

        header, body = self._cells(lambda s: rf"\textbf{{{s}}}")
        n = len(self.games)
        lines = [
            "% Generated by rem.results; needs \\usepackage{booktabs}.",
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\caption{{{esc(caption)} {esc(run_note(self.raw))}}}",
            rf"\label{{{label}}}",
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            " & ".join(esc(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for i, row in enumerate(body):
            if i == n:
                lines.append(r"\midrule")
            cells = [esc(row[0])] + [c if c.startswith(r"\textbf") else esc(c) for c in row[1:]]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if note:
            lines += [r"\par\smallskip\footnotesize " + esc(note)]
        lines += [r"\end{table}"]
        return "\n".join(lines) + "\n"
