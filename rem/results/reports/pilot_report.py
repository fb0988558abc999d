"""Render a `rem.results.reports.pilot.Pilot`: pilot.md, pilot.json and two figures.

pilot_learning.png      per game: test return per evaluation with 95% CIs, the random policy
                  as a band, the published final scores far above as a band (their
                  range) with their mean; tokenizer reconstruction error below it
pilot_world_model.png   per game: next-frame token accuracy at each wm-eval epoch against
                  repeating the previous frame and the same model with shuffled actions
"""

from __future__ import annotations

import math
from pathlib import Path

from rem.results.reports.pilot import Pilot
from rem.utils.atomic import atomic_write_json, atomic_write_text


def _save_with_legend(plt, fig, ax, path: Path, *, top: float) -> None:
    """One legend above the panels (from `ax`'s lines), then write and close the figure."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning(pilot: Pilot, path: Path) -> None:
    plt = _plt()
    n = len(pilot.games)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 5.6), squeeze=False, sharex="col")
    for i, g in enumerate(pilot.games):
        ax, low = axes[0][i], axes[1][i]
        r_mean, r_lo, r_hi = g.random[:3]
        ax.axhspan(r_lo, r_hi, color="grey", alpha=0.3, label="random policy (95% CI)")
        ax.axhline(r_mean, color="grey", lw=1)
        if g.test_returns:
            e, m, lo, hi = zip(*g.test_returns, strict=True)
            err = [[a - b for a, b in zip(m, lo, strict=True)],
                   [b - a for a, b in zip(m, hi, strict=True)]]  # fmt: skip
            ax.errorbar(e, m, yerr=err, marker="o", ms=3, capsize=2, label="test return")
        pub = g.published
        ax.axhspan(pub["min"], pub["max"], color="tab:green", alpha=0.15,
                   label="published REM final (600 epochs), range")  # fmt: skip
        ax.axhline(pub["mean"], color="tab:green", lw=1, ls="--")
        ax.set_title(f"{g.game} (seed {g.seed})")
        if g.reconstruction:
            e, v = zip(*g.reconstruction, strict=True)
            low.plot(e, v, marker="o", ms=3, color="tab:purple")
        low.set_xlabel("epoch")
    axes[0][0].set_ylabel("episode return")
    axes[1][0].set_ylabel("tokenizer reconstruction error")
    _save_with_legend(plt, fig, axes[0][0], path, top=0.93)


def plot_world_model(pilot: Pilot, path: Path) -> None:
    plt = _plt()
    n = len(pilot.games)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), squeeze=False)
    series = (("token_acc", "world model"), ("token_acc_repeat", "repeat previous frame"),
              ("token_acc_shuffled", "shuffled actions"))  # fmt: skip
    for ax, g in zip(axes[0], pilot.games, strict=True):
        epochs = sorted(g.world_model)
        for key, label in series:
            ax.plot(epochs, [g.world_model[e][key] for e in epochs], marker="o", label=label)
        ax.set_title(g.game)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("next-frame token accuracy")
    _save_with_legend(plt, fig, axes[0][0], path, top=0.88)


def _f(x: float, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _rules_lines(pilot: Pilot) -> list[str]:
    lines = [f"## Go / no-go: **{pilot.verdict}**", ""]
    for r in pilot.rules:
        lines += [f"- **{r.status}**: {r.name}", f"  - why: {r.reason}"]
        if r.evidence:
            lines.append(f"  - measured: {r.evidence}")
    return lines + [""]


def _game_lines(pilot: Pilot) -> list[str]:
    lines = ["## Per game", "",
             "| game | epochs | test return at the last evaluation [95% CI] | final | random "
             "policy | published REM final (mean, range) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for g in pilot.games:
        last = g.test_returns[-1] if g.test_returns else None
        last_s = f"{last[1]:.1f} [{last[2]:.1f}, {last[3]:.1f}] (epoch {last[0]})" if last else "-"
        fin = f"{g.final[0]:.1f} [{g.final[1]:.1f}, {g.final[2]:.1f}]" if g.final else "-"
        p = g.published
        lines.append(
            f"| {g.game} | {g.epochs_done} | {last_s} | {fin} | {g.random[0]:.1f} "
            f"[{g.random[1]:.1f}, {g.random[2]:.1f}] | {p['mean']:.1f} "
            f"({p['min']:.1f} to {p['max']:.1f}) |"
        )
    lines += ["", "World model on fresh held-out steps (`rem wm-eval`), per epoch:", "",
              "| game | epoch | token acc | repeat previous | shuffled actions | reward F1 | "
              "majority F1 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for g in pilot.games:
        for e in sorted(g.world_model):
            w = g.world_model[e]
            lines.append(
                f"| {g.game} | {e} | {_f(w['token_acc'])} | {_f(w['token_acc_repeat'])} | "
                f"{_f(w['token_acc_shuffled'])} | {_f(w['reward_f1'], 2)} | "
                f"{_f(w['reward_f1_majority'], 2)} |"
            )
    return lines + [""]


def _cost_lines(pilot: Pilot) -> list[str]:
    c = pilot.cost
    if not c:
        return []
    lines = ["## Cost of the full paper config, from this pilot's own epochs", ""]
    lines.append(f"Device: {c.get('device', '?')}; {c.get('runs_per_gpu', 1)} pilot run(s) "
                 "per GPU.")  # fmt: skip
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in c.get("epoch_phase_s", {}).items())
    lines.append(f"Measured seconds per epoch of each phase (medians over the epochs in which "
                 f"it ran): {phases}; one test episode {c.get('eval_episode_s', 0):.2f} s.")  # fmt: skip
    if c.get("slowdown_note"):
        lines.append(c["slowdown_note"])
    for line in c.get("full_config", []):
        lines.append(f"- {line}")
    for note in c.get("notes", []):
        lines.append(f"- note: {note}")
    return lines + [""]


def _disk_lines(pilot: Pilot) -> list[str]:
    return ["## Disk", ""] + [f"- {line}" for line in pilot.disk.get("lines", [])] + [""]


def write(pilot: Pilot, out: Path, title_note: str = "") -> dict[str, Path]:
    """pilot.md, pilot.json, learning.png, world_model.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f for k, f in (("markdown", "pilot.md"), ("json", "pilot.json"),
             ("learning", "pilot_learning.png"), ("world_model", "pilot_world_model.png"))}  # fmt: skip
    plot_learning(pilot, paths["learning"])
    plot_world_model(pilot, paths["world_model"])
    games = ", ".join(f"{g.game} (seed {g.seed})" for g in pilot.games)
    lines = [f"# Pilot report{title_note}", "",
             f"Preset {pilot.preset}; games {games}; wm-eval at epochs "
             f"{', '.join(map(str, pilot.wm_epochs))}.", ""]  # fmt: skip
    lines += [f"- note: {n}" for n in pilot.notes] + ([""] if pilot.notes else [])
    lines += _rules_lines(pilot) + _game_lines(pilot)
    lines += ["![learning](pilot_learning.png)", "", "![world model](pilot_world_model.png)", ""]
    lines += _cost_lines(pilot) + _disk_lines(pilot)
    atomic_write_text(paths["markdown"], "\n".join(lines))
    atomic_write_json(paths["json"], pilot.to_json())
    return paths
