"""Figures: rliable's plots where they fit, all saved reproducibly as PNG and PDF.

Fonts are matplotlib's bundled DejaVu (no LaTeX, nothing to install); the PDF carries no
creation date and the PNG no timestamp, so two runs write identical bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rem.results.stats.aggregates import METRIC_LABELS, METRICS
from rem.results.stats.bootstrap import Interval
from rem.utils.atomic import atomic_write_bytes  # noqa: E402

STYLE = {
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "rem-results",
    "pdf.fonttype": 42,
    "axes.unicode_minus": False,
}
FIGURE_FORMATS = ("png", "pdf")
# seaborn's "colorblind" palette as RGB (tests/test_results_figures.py compares them): a
# constant, so that figures without rliable's plots (the seed planner) do not load seaborn
# and scipy; rliable.plot_utils, which does, is imported by the figures that use it.
COLORBLIND = tuple(
    matplotlib.colors.to_rgb(c)
    for c in ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
              "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9")
)  # fmt: skip
# What each format may carry: no timestamps, a fixed producer string.
_METADATA = {
    "png": {"Software": "rem.results (matplotlib)"},
    "pdf": {"Creator": "rem.results (matplotlib)", "Producer": "matplotlib", "CreationDate": None},
}


def palette(indices: dict[str, int]) -> dict[str, tuple]:
    """Algorithm -> colour from seaborn's colorblind palette (the paper's indices)."""
    colours = COLORBLIND
    return {name: colours[i % 10] for name, i in indices.items()}


def save(
    fig: plt.Figure, out_dir: Path, stem: str, formats: tuple[str, ...] = FIGURE_FORMATS
) -> list[Path]:
    """Write stem.png and stem.pdf atomically; returns the paths."""
    paths = []
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=_METADATA[fmt])
        path = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def save_png(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    return save(fig, out_dir, stem, ("png",))


def placeholder(text: str) -> plt.Figure:
    """A figure that says why there is nothing to plot (keeps the output list fixed)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


FIGURE_METRICS = ("median", "iqm", "mean", "optimality_gap")  # rliable's panel order


def aggregates_figure(intervals: dict[str, Interval], colours: dict[str, tuple]) -> plt.Figure:
    """Median, IQM, mean and optimality gap with 95% CIs (rliable's interval plot)."""
    if not intervals:
        return placeholder("No aggregates to plot.")
    cols = [METRICS.index(m) for m in FIGURE_METRICS]
    point = {a: iv.estimate[cols] for a, iv in intervals.items()}
    ci = {a: np.stack([iv.low[cols], iv.high[cols]]) for a, iv in intervals.items()}
    with plt.rc_context(STYLE):
        from rliable import plot_utils

        fig, _ = plot_utils.plot_interval_estimates(
            point,
            ci,
            metric_names=[METRIC_LABELS[m] for m in FIGURE_METRICS],
            algorithms=list(intervals),
            colors=colours,
            xlabel="Human Normalized Score",
            # fig.text in figure coordinates: keep ~0.6 inch below the axes at any height.
            xlabel_y_coordinate=-0.6 / (0.5 * len(intervals)),
            subfigure_width=3.4,
            row_height=0.5,
        )
    return fig


def iqm_figure(
    intervals: dict[str, Interval], colours: dict[str, tuple], highlight: str
) -> plt.Figure:
    """The headline: IQM of human-normalised scores with 95% CIs, one bar per algorithm."""
    k = METRICS.index("iqm")
    names = list(intervals)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.2, 0.45 * len(names) + 1.0))
        for i, name in enumerate(names):
            iv = intervals[name]
            est, lo, hi = iv.estimate[k], iv.low[k], iv.high[k]
            ax.barh(i, est, color=colours[name], alpha=0.9 if name == highlight else 0.6)
            ax.errorbar(est, i, xerr=[[est - lo], [hi - est]], color="k", capsize=3, lw=1.2)
            ax.text(hi + 0.01, i, f"{est:.3f}", va="center", fontsize=9)
        ax.set_yticks(range(len(names)), names)
        for label in ax.get_yticklabels():
            if label.get_text() == highlight:
                label.set_fontweight("bold")
        ax.set_xlabel("IQM human-normalised score (95% bootstrap CI)")
        ax.set_xlim(0, max(iv.high[k] for iv in intervals.values()) * 1.18)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, axis="x", alpha=0.25)
        ax.set_title("Atari 100k, 26 games")
        fig.tight_layout()
    return fig


def profile_figure(
    profiles: dict[str, Interval], taus: np.ndarray, colours: dict[str, tuple]
) -> plt.Figure:
    """Performance profiles (fraction of runs with HNS > tau) with 95% CIs."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        from rliable import plot_utils

        plot_utils.plot_performance_profiles(
            {a: iv.estimate for a, iv in profiles.items()},
            taus,
            performance_profile_cis={a: (iv.low, iv.high) for a, iv in profiles.items()},
            colors=colours,
            ax=ax,
            xlabel=r"Human Normalized Score ($\tau$)",
            ylabel=r"Fraction of runs with score $> \tau$",
            labelsize="large",
            ticklabelsize="large",
        )
        ax.legend(loc="upper right", frameon=False)
        fig.tight_layout()
    return fig


def improvement_figure(improvement: dict[str, Interval], colours: list[tuple]) -> plt.Figure:
    """P(X > Y) with 95% CIs for each pair 'X,Y' (rliable's plot)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.5, 0.5 * len(improvement) + 1.2))
        from rliable import plot_utils

        plot_utils.plot_probability_of_improvement(
            {p: iv.estimate[0] for p, iv in improvement.items()},
            {p: np.array([iv.low[0], iv.high[0]]) for p, iv in improvement.items()},
            ax=ax,
            colors=colours,
            xticks=[0.0, 0.25, 0.5, 0.75, 1.0],
            ticklabelsize="medium",
            labelsize="medium",
        )
        ax.set_xlim(0, 1)
        ax.axvline(0.5, color="grey", ls="--", lw=0.8)
        fig.tight_layout()
    return fig


def summary_figure(
    improvement: dict[str, Interval],
    intervals: dict[str, Interval],
    colours: dict[str, tuple],
    reference: str,
) -> plt.Figure:
    """Ablation summary: P(reference > Y) per ablation Y beside IQM CIs of all variants."""
    k = METRICS.index("iqm")
    others = [p.split(",", 1)[1] for p in improvement]
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(9, 0.5 * len(intervals) + 1.4), gridspec_kw={"width_ratios": [1, 1]}
        )
        for i, (name, iv) in enumerate(zip(others, improvement.values())):
            left.barh(i, iv.high[0] - iv.low[0], left=iv.low[0], color=colours[name], alpha=0.75)
            left.vlines(iv.estimate[0], i - 0.3, i + 0.3, color="k")
        left.set_yticks(range(len(others)), others)
        left.axvline(0.5, color="grey", ls="--", lw=0.8)
        left.set_xlim(0, 1)
        left.set_xlabel(f"P({reference} > Y)")
        left.set_title(f"Probability of improvement of {reference}")
        names = list(intervals)
        for i, name in enumerate(names):
            iv = intervals[name]
            right.barh(i, iv.high[k] - iv.low[k], left=iv.low[k], color=colours[name], alpha=0.75)
            right.vlines(iv.estimate[k], i - 0.3, i + 0.3, color="k")
        right.set_yticks(range(len(names)), names)
        right.set_xlabel("IQM human-normalised score")
        right.set_title("IQM (95% CI)")
        for ax in (left, right):
            ax.invert_yaxis()
            ax.spines[["top", "right"]].set_visible(False)
            ax.grid(True, axis="x", alpha=0.25)
        fig.tight_layout()
    return fig


def add_footer(fig: plt.Figure, lines: list[str], title: str = "") -> plt.Figure:
    """Text under the axes (kept by bbox_inches='tight'): protocol warnings, coverage."""
    if not lines:
        return fig
    text = "\n".join(([title] if title else []) + lines)
    # Below any text already placed under the axes in figure coordinates (rliable's xlabel).
    below = [t.get_position()[1] for t in fig.texts if t.get_position()[1] < 0.05]
    y = min(below) - 0.08 if below else -0.01
    fig.text(0.0, y, text, ha="left", va="top", fontsize=7, color="#7a0000", wrap=False)
    return fig


def preliminary(fig: plt.Figure, coverage: str) -> plt.Figure:
    """Stamp a figure of a partial report: PRELIMINARY and its coverage (N of M runs)."""
    # Above everything already drawn (axes titles may sit above the figure box; bbox_inches=
    # 'tight' keeps what is outside it), so it never covers a title or a legend.
    fig.draw_without_rendering()
    inv = fig.transFigure.inverted()
    tops = [a.get_tightbbox().transformed(inv).y1 for a in fig.axes if a.get_visible()]
    tops += [lg.get_window_extent().transformed(inv).y1 for lg in fig.legends]
    y = max([1.0, *tops]) + 0.1 / fig.get_figheight()
    fig.suptitle(f"PRELIMINARY ({coverage})", y=y, va="bottom", fontsize=11, color="#b00000",
                 fontweight="bold")  # fmt: skip
    return fig


def learning_curves_figure(
    curves: dict[str, dict[str, list[tuple[str, np.ndarray, np.ndarray]]]],
    colours: dict[str, tuple],
    published: dict[str, dict[str, np.ndarray]] | None = None,
) -> plt.Figure:
    """One panel per game; per variant one line per seed (solid test return, dashed train).

    curves[game][variant] = [(label, epochs (t,), returns (t,)), ...], label 'test', 'train'
    or 'final' (the final evaluation, drawn as a star).
    published[game][variant] = (runs,) published final raw scores of the variant's
    counterpart: each run a point at the right end of the panel, their mean +- standard
    error a horizontal band across it, so a run's place against the paper shows at a glance.
    One legend, outside the panels.
    """
    published = published or {}
    games = sorted(set(curves) | set(published))
    if not games:
        return placeholder("No learning curves: no readable metrics.jsonl in the run folders.")
    cols = min(4, max(1, len(games)))
    rows = max(1, -(-len(games) // cols))
    handles: dict[str, object] = {}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows, cols, figsize=(4 * cols + 2.2, 3 * rows), squeeze=False, layout="constrained"
        )
        for ax in axes.flat[len(games) :]:
            ax.set_visible(False)
        for ax, game in zip(axes.flat, games):
            end = _draw_run_curves(ax, curves.get(game, {}), colours, handles)
            _draw_published_finals(ax, published.get(game, {}), colours, max(end, 1), handles)
            ax.set_title(game)
            ax.set_xlabel("epoch")
            ax.set_ylabel("return")
            ax.grid(True, alpha=0.25)
        for key, style in (("test", "-"), ("train", "--")):
            handles[key] = plt.Line2D([], [], color="grey", ls=style, label=f"{key} return")
        handles["final"] = plt.Line2D(
            [], [], color="grey", marker="*", ls="", ms=9, label="final evaluation"
        )
        fig.legend(handles=list(handles.values()), loc="outside right center", fontsize=8,
                   frameon=False)  # fmt: skip
    return fig


def _draw_run_curves(
    ax: plt.Axes,
    by_variant: dict[str, list[tuple[str, np.ndarray, np.ndarray]]],
    colours: dict[str, tuple],
    handles: dict[str, object],
) -> int:
    """Our runs' curves on one panel (legend entries added to `handles`); returns the last
    epoch drawn."""
    end = 0
    for variant, lines in sorted(by_variant.items()):
        for label, epochs, values in lines:
            end = max(end, int(np.max(epochs)) if len(epochs) else 0)
            if label == "final":
                ax.plot(epochs, values, "*", color=colours[variant], ms=9)
                continue
            ax.plot(
                epochs,
                values,
                color=colours[variant],
                ls="-" if label == "test" else "--",
                marker="o",
                ms=2.5,
                lw=1.2,
                alpha=0.85,
            )
        handles.setdefault(
            variant, plt.Line2D([], [], color=colours[variant], label=f"ours: {variant}")
        )
    return end


def _draw_published_finals(
    ax: plt.Axes,
    by_variant: dict[str, np.ndarray],
    colours: dict[str, tuple],
    end: int,
    handles: dict[str, object],
) -> None:
    """The published runs' final scores right of epoch `end`, their mean +- s.e. as a band."""
    for k, (variant, runs) in enumerate(sorted(by_variant.items())):
        colour = colours.get(variant, "grey")
        mean = float(np.mean(runs))
        sem = float(np.std(runs, ddof=1) / np.sqrt(len(runs))) if len(runs) > 1 else 0.0
        ax.axhspan(mean - sem, mean + sem, color=colour, alpha=0.15, lw=0)
        ax.axhline(mean, color=colour, lw=0.8, ls=":")
        # Points just right of the last epoch, spread so that equal scores stay visible.
        xs = end * (1.02 + 0.012 * k) + np.linspace(0, end * 0.02, len(runs))
        ax.plot(xs, runs, "D", color=colour, ms=4, mec="k", mew=0.4)
        handles.setdefault(
            f"pub:{variant}",
            plt.Line2D([], [], color=colour, marker="D", ls=":", mec="k", mew=0.4,
                       label=f"published ({variant}): runs, mean \u00b1 s.e."),
        )  # fmt: skip


def seed_plan_figure(rows, checks, algorithm: str) -> plt.Figure:
    """Seed planner: expected 95% CI width of IQM and power against runs per game, one
    line per game set (and per delta); crosses = the direct simulation. Legends outside."""
    sets = list(dict.fromkeys(r.games for r in rows))
    deltas = list(rows[0].power) if rows else []
    styles = ["-", "--", ":", "-."]
    colours = COLORBLIND
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.8), layout="constrained")
        for i, name in enumerate(sets):
            rs = [r for r in rows if r.games == name]
            x = [r.runs for r in rs]
            left.plot(x, [r.ci_width for r in rs], marker="o", color=colours[i], label=name)
            if checks:
                cs = [c for c in checks if c.games == name]
                left.plot([c.runs for c in cs], [c.simulated_width for c in cs], "x",
                          color="k", ms=7)  # fmt: skip
            for j, d in enumerate(deltas):
                right.plot(x, [r.power[d] for r in rs], marker="o", color=colours[i],
                           ls=styles[j % len(styles)])  # fmt: skip
                if checks:
                    cs = [c for c in checks if c.games == name]
                    right.plot([c.runs for c in cs], [c.simulated_power[d] for c in cs], "x",
                               color="k", ms=6)  # fmt: skip
        if checks:
            left.plot([], [], "x", color="k", label="direct simulation")
        left.set_xlabel("runs per game")
        left.set_ylabel("expected 95% CI width of IQM")
        left.set_xticks(sorted({r.runs for r in rows}))
        left.grid(True, alpha=0.25)
        left.set_title(f"CI width (from the published {algorithm} runs)")
        right.set_xlabel("runs per game")
        right.set_ylabel("power (CI of the difference excludes 0)")
        right.set_xticks(sorted({r.runs for r in rows}))
        right.set_ylim(0, 1.02)
        right.axhline(0.8, color="grey", lw=0.8, ls="--")
        right.grid(True, alpha=0.25)
        right.set_title("Power to detect an IQM difference delta")
        for j, d in enumerate(deltas):
            right.plot([], [], color="grey", ls=styles[j % len(styles)], label=f"delta = {d:g}")
        for i, name in enumerate(sets):
            right.plot([], [], color=colours[i], lw=6, label=name)
        left.legend(loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False, fontsize=8)
        right.legend(loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False, fontsize=8,
                     ncol=2)  # fmt: skip
    return fig
