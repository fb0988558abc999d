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
import seaborn as sns  # noqa: E402
from rliable import plot_utils  # noqa: E402

from rem.results.bootstrap import Interval  # noqa: E402
from rem.results.metrics import METRIC_LABELS, METRICS  # noqa: E402
from rem.utils.atomic import atomic_write_bytes  # noqa: E402

STYLE = {
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "rem-results",
    "pdf.fonttype": 42,
    "axes.unicode_minus": False,
}
FIGURE_FORMATS = ("png", "pdf")
# What each format may carry: no timestamps, a fixed producer string.
_METADATA = {
    "png": {"Software": "rem.results (matplotlib)"},
    "pdf": {"Creator": "rem.results (matplotlib)", "Producer": "matplotlib", "CreationDate": None},
}


def palette(indices: dict[str, int]) -> dict[str, tuple]:
    """Algorithm -> colour from seaborn's colorblind palette (the paper's indices)."""
    colours = sns.color_palette("colorblind", 10)
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


def learning_curves_figure(
    curves: dict[str, dict[str, list[tuple[str, np.ndarray, np.ndarray]]]],
    colours: dict[str, tuple],
) -> plt.Figure:
    """One panel per game; per variant one line per seed (solid test return, dashed train).

    curves[game][variant] = [(label, epochs (t,), returns (t,)), ...], label 'test', 'train'
    or 'final' (the final evaluation, drawn as a star).
    """
    games = sorted(curves)
    if not games:
        return placeholder("No learning curves: no readable metrics.jsonl in the run folders.")
    cols = min(4, max(1, len(games)))
    rows = max(1, -(-len(games) // cols))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax in axes.flat[len(games) :]:
            ax.set_visible(False)
        for ax, game in zip(axes.flat, games):
            for variant, lines in sorted(curves[game].items()):
                for label, epochs, values in lines:
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
                ax.plot([], [], color=colours[variant], label=variant)
            ax.plot([], [], color="grey", ls="-", label="test return")
            ax.plot([], [], color="grey", ls="--", label="train return")
            ax.plot([], [], "*", color="grey", label="final evaluation")
            ax.set_title(game)
            ax.set_xlabel("epoch")
            ax.set_ylabel("return")
            ax.grid(True, alpha=0.25)
            ax.legend(fontsize=7, frameon=False)
        fig.tight_layout()
    return fig
