"""The learning benchmark's report: does the agent beat a random policy, and does its world
model beat the trivial predictors?

Inputs (the `learning` target of the workflow writes all three):
- run folders `<runs>/<variant>/<game>/<seed>/` of `rem train` (metrics.jsonl, scores.json);
- random-policy scores `<random>/<game>.json` of `rem evaluate --policy random`, played under
  the runs' own env protocol (`--preset`), as many episodes as the runs' final evaluation;
- world-model figures `<world_model>/<variant>/<game>/<seed>.json` of `rem wm-eval --json`.

Outputs in `out/`: `final_returns.csv` (per game: agent and random mean return with 95%
bootstrap CIs over episodes, per-seed means, verdict), `seed_returns.csv` (the same verdict
for each seed alone), `world_model.csv`, `learning_curves.png`
(test return per evaluation and train return per epoch, one line per seed, the random policy
as a band) and `learning.md` that puts them together.

Final returns pool the final-evaluation episodes of all seeds of a game; their CI is a
percentile bootstrap over episodes (rliable's `get_interval_estimates` with one task), so it
measures episode noise, not seed-to-seed spread: with 2 seeds a CI over seeds means nothing,
and the per-seed means are listed beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rem.runs import files, layout
from rem.utils.jsonl import JsonlError
from rem.utils.paths import project_root as find_project_root

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0


class LearningReportError(ValueError):
    """An input of the learning report is missing or malformed; the message names the fix."""


@dataclass
class RunRecord:
    """One finished training run as the learning report reads it from its run folder: its
    per-epoch metrics, final test returns and optional world-model evaluation. The
    reproduction report's `Run` is one row of the tidy score table instead (no metrics)."""

    game: str
    seed: int
    metrics: list[dict[str, Any]]
    final_returns: list[float]
    world_model: dict[str, Any] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Metrics lines of a run; a half-written last line (a run still writing) is skipped,
    an earlier bad line is an error naming it (rem.utils.jsonl)."""
    try:
        return files.read_metrics(path)
    except JsonlError as err:
        raise LearningReportError(str(err)) from err


def load_runs(runs_dir: Path, variant: str, wm_dir: Path | None = None) -> list[RunRecord]:
    """Every finished run (`scores.json` present) of one variant under `runs_dir`."""
    root = runs_dir / variant
    if not root.is_dir():
        raise LearningReportError(
            f"{root} does not exist: train the runs first "
            f"(snakemake --cores 2 --configfile config/learning.yaml learning)"
        )
    records = []
    for scores_path in sorted(root.glob(f"*/*/{layout.SCORES}")):
        run = scores_path.parent
        game, seed = run.parent.name, int(run.name)
        scores = json.loads(scores_path.read_text())
        manifest = files.read_manifest(run) or {}
        wm = None
        if wm_dir is not None:
            wm_path = wm_dir / variant / game / f"{seed}.json"
            wm = json.loads(wm_path.read_text()) if wm_path.exists() else None
        records.append(
            RunRecord(
                game,
                seed,
                read_metrics(run / layout.METRICS),
                [float(r) for r in scores["returns"]],
                wm,
                manifest,
            )
        )
    if not records:
        raise LearningReportError(f"no finished run (scores.json) under {root}")
    return records


def load_random(random_dir: Path, games: list[str]) -> dict[str, list[float]]:
    """Random-policy returns per game from `rem evaluate --policy random --out` files."""
    out = {}
    for game in games:
        path = random_dir / f"{game}.json"
        if not path.exists():
            raise LearningReportError(
                f"{path} is missing: rem evaluate --game {game} --policy random --preset small "
                f"--out {path}"
            )
        data = json.loads(path.read_text())
        if data.get("policy") != "random":
            raise LearningReportError(f"{path} holds a {data.get('policy')!r} policy, not random")
        out[game] = [float(r) for r in data["returns"]]
    return out


def mean_ci(returns: list[float]) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap CI over episodes (rliable, one task)."""
    from rliable import library as rly

    scores = np.asarray(returns, dtype=float).reshape(-1, 1)  # (episodes, 1 task)
    np.random.seed(BOOTSTRAP_SEED)  # rliable draws from numpy's global generator
    point, interval = rly.get_interval_estimates(
        {"x": scores}, lambda s: np.array([s.mean()]), reps=BOOTSTRAP_REPS
    )
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def final_returns_table(runs: list[RunRecord], random: dict[str, list[float]]) -> pd.DataFrame:
    """Per game: agent vs random final mean return, CIs, per-seed means and the verdict."""
    rows = []
    for game in sorted({r.game for r in runs}):
        game_runs = sorted((r for r in runs if r.game == game), key=lambda r: r.seed)
        agent = [x for r in game_runs for x in r.final_returns]
        a_mean, a_lo, a_hi = mean_ci(agent)
        r_mean, r_lo, r_hi = mean_ci(random[game])
        rows.append(
            {
                "game": game,
                "seeds": len(game_runs),
                "agent_episodes": len(agent),
                "agent_mean": a_mean,
                "agent_ci_low": a_lo,
                "agent_ci_high": a_hi,
                "agent_seed_means": " / ".join(
                    f"{np.mean(r.final_returns):.1f}" for r in game_runs
                ),
                "random_episodes": len(random[game]),
                "random_mean": r_mean,
                "random_ci_low": r_lo,
                "random_ci_high": r_hi,
                "verdict": verdict(a_lo, a_hi, r_lo, r_hi),
            }
        )
    return pd.DataFrame(rows)


def seed_returns_table(runs: list[RunRecord], random: dict[str, list[float]]) -> pd.DataFrame:
    """Per run (game, seed): its own final mean return and CI against the random policy's.

    The learning benchmark's targets count seeds ("3 of 3 seeds above random"), which the
    pooled table cannot show: one strong seed can carry a pooled CI above random.
    """
    rows = []
    for run in sorted(runs, key=lambda r: (r.game, r.seed)):
        a_mean, a_lo, a_hi = mean_ci(run.final_returns)
        _, r_lo, r_hi = mean_ci(random[run.game])
        rows.append(
            {
                "game": run.game,
                "seed": run.seed,
                "episodes": len(run.final_returns),
                "mean": a_mean,
                "ci_low": a_lo,
                "ci_high": a_hi,
                "verdict": verdict(a_lo, a_hi, r_lo, r_hi),
            }
        )
    return pd.DataFrame(rows)


BEATS = "beats random (CIs disjoint)"


def verdict(a_lo: float, a_hi: float, r_lo: float, r_hi: float) -> str:
    """The agent's CI [a_lo, a_hi] against the random policy's [r_lo, r_hi]."""
    if a_lo > r_hi:
        return BEATS
    if a_hi < r_lo:
        return "below random (CIs disjoint)"
    return "not distinguishable (CIs overlap)"


# Figures of `rem wm-eval --json` shown in the report: (column, key path in the JSON).
WM_FIELDS = {
    "token_acc": ("token_accuracy", "model"),
    "token_acc_repeat": ("token_accuracy", "repeat_previous"),
    "token_acc_shuffled": ("token_accuracy", "shuffled_actions"),
    "changed_token_acc": ("token_accuracy_changed", "model"),
    "changed_token_acc_shuffled": ("token_accuracy_changed", "shuffled_actions"),
    "token_ce": ("token_cross_entropy", "model"),
    "token_ce_repeat": ("token_cross_entropy", "repeat_previous"),
    "token_ce_shuffled": ("token_cross_entropy", "shuffled_actions"),
    "reward_acc": ("reward", "model", "accuracy"),
    "reward_acc_majority": ("reward", "majority", "accuracy"),
    "reward_f1": ("reward", "model", "f1"),
    "reward_f1_majority": ("reward", "majority", "f1"),
    "end_f1": ("end", "model", "f1"),
    "pixel_mse": ("imagination_mse_mean", "model"),
    "pixel_mse_recon": ("imagination_mse_mean", "reconstruction"),
    "pixel_mse_repeat": ("imagination_mse_mean", "repeat_last"),
}


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> float:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return math.nan
        data = data[key]
    return float(data) if isinstance(data, int | float) else math.nan


def world_model_table(runs: list[RunRecord]) -> pd.DataFrame:
    """Per run: the world model's held-out figures next to their baselines."""
    rows = []
    for r in sorted(runs, key=lambda r: (r.game, r.seed)):
        if r.world_model is None:
            continue
        row: dict[str, Any] = {"game": r.game, "seed": r.seed}
        row.update({name: _dig(r.world_model, path) for name, path in WM_FIELDS.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=["game", "seed", *WM_FIELDS])


def curves(run: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test, train) curves of a run: env steps collected so far -> mean return."""
    test, train = [], []
    for row in run.metrics:
        steps = row.get("collection/total_steps")
        if steps is None:
            continue
        if row.get("test/return_mean") is not None:
            test.append({"steps": steps, "return": row["test/return_mean"]})
        ret = row.get("collection/return")
        if ret is not None and not (isinstance(ret, float) and math.isnan(ret)):
            train.append({"steps": steps, "return": ret})
    return pd.DataFrame(test, columns=["steps", "return"]), pd.DataFrame(
        train, columns=["steps", "return"]
    )


def plot_curves(runs: list[RunRecord], random: dict[str, list[float]], path: Path) -> None:
    """One panel per game: test (solid) and train (faint) returns per seed, random band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = sorted({r.game for r in runs})
    fig, axes = plt.subplots(1, len(games), figsize=(4.2 * len(games), 3.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, game in zip(axes[0], games, strict=True):
        r_mean, r_lo, r_hi = mean_ci(random[game])
        ax.axhspan(r_lo, r_hi, color="grey", alpha=0.25, label="random policy (95% CI)")
        ax.axhline(r_mean, color="grey", lw=1)
        for i, run in enumerate(sorted((r for r in runs if r.game == game), key=lambda r: r.seed)):
            test, train = curves(run)
            c = colors[i % len(colors)]
            ax.plot(train["steps"], train["return"], color=c, alpha=0.3, lw=1,
                    label=f"seed {run.seed} train")  # fmt: skip
            ax.plot(test["steps"], test["return"], color=c, marker="o", ms=3,
                    label=f"seed {run.seed} test")  # fmt: skip
            final_steps = max(test["steps"].max() if len(test) else 0, 1)
            ax.errorbar([final_steps * 1.04], [np.mean(run.final_returns)], color=c, marker="*",
                        ms=9, ls="none", label=f"seed {run.seed} final")  # fmt: skip
        ax.set_title(game)
        ax.set_xlabel("agent steps collected")
    axes[0][0].set_ylabel("episode return")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _protocol_line(runs: list[RunRecord]) -> str:
    cfg = runs[0].manifest.get("config", {}) if runs[0].manifest else {}
    coll, env = cfg.get("collection", {}), cfg.get("env", {})
    if not cfg:
        return "(no manifest found: protocol unknown)"
    steps = coll.get("steps_per_epoch", 0) * coll.get("stop_after_epochs", 0)
    return (
        f"preset `{runs[0].manifest.get('preset', '?')}`: {steps} agent steps collected per run, "
        f"{cfg.get('run', {}).get('epochs', '?')} epochs; test episodes capped at "
        f"{env.get('test_max_raw_frames', '?')} raw frames; final evaluation of "
        f"{cfg.get('evaluation', {}).get('final_episodes', '?')} episodes per run at test "
        f"temperature {coll.get('test_temperature', '?')}"
    )


def write_learning_report(
    runs_dir: Path,
    variant: str,
    random_dir: Path,
    wm_dir: Path | None,
    out: Path,
    project_root: Path | None = None,
) -> pd.DataFrame:
    """Write the learning report into `out`; returns the final-returns table."""
    from rem.utils.atomic import atomic_write_text

    runs = load_runs(runs_dir, variant, wm_dir)
    games = sorted({r.game for r in runs})
    random = load_random(random_dir, games)
    finals = final_returns_table(runs, random)
    seeds = seed_returns_table(runs, random)
    wm = world_model_table(runs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "final_returns.csv", finals.to_csv(index=False, float_format="%.3f"))
    atomic_write_text(out / "seed_returns.csv", seeds.to_csv(index=False, float_format="%.3f"))
    atomic_write_text(out / "world_model.csv", wm.to_csv(index=False, float_format="%.4f"))
    plot_curves(runs, random, out / "learning_curves.png")
    inputs = [_relative(p, project_root) for p in (runs_dir / variant, random_dir) if p.exists()]
    lines = _report_lines(variant, runs, (finals, seeds), wm, inputs)
    atomic_write_text(out / "learning.md", "\n".join(lines))
    return finals


def _relative(p: Path, project_root: Path | None) -> str:
    """`p` relative to the project root (default: rem.utils.paths') when inside it."""
    try:
        return str(p.resolve().relative_to((project_root or find_project_root()).resolve()))
    except ValueError:
        return str(p)


def _shown_finals(finals: pd.DataFrame) -> pd.DataFrame:
    """The final-returns table as shown in learning.md: each mean with its CI in one cell."""
    return finals.assign(
        agent=[
            f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
            for m, lo, hi in zip(finals.agent_mean, finals.agent_ci_low, finals.agent_ci_high)
        ],
        random=[
            f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
            for m, lo, hi in zip(finals.random_mean, finals.random_ci_low, finals.random_ci_high)
        ],
    )[["game", "seeds", "agent", "agent_seed_means", "random", "verdict"]]


def _shown_seeds(seeds: pd.DataFrame) -> pd.DataFrame:
    """The per-seed table as shown in learning.md."""
    return seeds.assign(
        final_return=[
            f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
            for m, lo, hi in zip(seeds["mean"], seeds.ci_low, seeds.ci_high)
        ]
    )[["game", "seed", "episodes", "final_return", "verdict"]]


def _report_lines(
    variant: str,
    runs: list[RunRecord],
    returns: tuple[pd.DataFrame, pd.DataFrame],
    wm: pd.DataFrame,
    inputs: list[str],
) -> list[str]:
    """The lines of learning.md; `returns`: the pooled and the per-seed final-return tables."""
    finals, seeds = returns
    beaten = int((finals.verdict == BEATS).sum())
    seeds_beaten = int((seeds.verdict == BEATS).sum())
    lines = [
        f"# Does it learn? Variant `{variant}` against a random policy",
        "",
        _protocol_line(runs),
        "",
        f"**{beaten} of {len(finals)} games** (seeds pooled) and **{seeds_beaten} of "
        f"{len(seeds)} runs** (each seed alone): the agent's final mean return beats the random "
        "policy's with disjoint 95% CIs.",
        "",
        "## Final returns",
        "",
        "Mean return over the final evaluation's episodes, all seeds pooled, with a 95% "
        "percentile-bootstrap CI over episodes; the random policy played the same protocol.",
        "",
        _shown_finals(finals).to_markdown(index=False),
        "",
        "Each seed alone, against the same random-policy CI:",
        "",
        _shown_seeds(seeds).to_markdown(index=False),
        "",
        "## Learning curves",
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    if len(wm):
        lines += [
            "## World model on held-out real segments (`rem wm-eval`)",
            "",
            "Next-frame token accuracy against repeating the previous frame's tokens and against "
            "the same model fed shuffled actions; reward accuracy against the majority class; "
            "imagined-vs-real pixel MSE against repeating the last real frame.",
            "",
            wm.to_markdown(index=False, floatfmt=".3f"),
            "",
        ]
    return lines + ["Inputs: " + ", ".join(inputs), ""]
