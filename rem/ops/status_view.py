"""`rem status` output: the run table, the summary and the coverage grid (rich), and the
coverage grid as a PNG (matplotlib)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.markup import escape

from rem.ops.records import STATES, SweepStatus, coverage, fmt_duration
from rem.runs.sweep import display_path
from rem.training.disk import human

STYLE = {
    "pending": "dim",
    "running": "cyan",
    "stalled": "yellow",
    "failed": "bold red",
    "completed": "green",
}
SYMBOL = {"pending": "·", "running": "▶", "stalled": "‖", "failed": "✗", "completed": "✓"}
COLOUR = {  # the PNG's
    "pending": "#e0e0e0",
    "running": "#4aa3df",
    "stalled": "#f2c14e",
    "failed": "#d1495b",
    "completed": "#66a182",
}


def _number(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def short(text: str, width: int = 90) -> str:
    """The first sentence of a message, at most `width` characters."""
    first = text.split(". ")[0].split("\n")[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def failure_lines(status: SweepStatus, states: set[str] | None = None):
    """Failed runs in full (the error, the log, the SLURM job), as one Text."""
    from rich.text import Text

    text = Text()
    for r in status.runs:
        if r.state != "failed" or (states and "failed" not in states):
            continue
        text.append(f"✗ {r.variant}/{r.game}/{r.seed}", style="bold red")
        text.append(f": {r.error or ''}\n")
        where = [f"log {r.log}" if r.log else "no log found", f"run folder {r.path}"]
        if r.slurm_job:
            where.append(f"SLURM job {r.slurm_job}")
        text.append("    " + "; ".join(where + r.notes) + "\n")
    text.rstrip()
    return text


def _row_cells(r) -> list[str]:
    epoch = f"{r.epoch if r.epoch is not None else '-'}/{r.epochs if r.epochs else '?'}"
    ret = _number(r.test_return)
    if r.test_return is not None and r.state != "completed" and r.test_return_epoch:
        ret += f" @{r.test_return_epoch}"
    details = []
    if r.error:
        details.append(short(r.error))
    if r.state in ("running", "stalled") and r.host:
        details.append(f"{r.host} pid {r.pid}" if r.pid else r.host)
    if r.state in ("running", "stalled") and r.slurm_job:
        details.append(f"SLURM job {r.slurm_job}")
    if r.failures:
        details.append(f"{r.failures} health stop(s) recorded (failures.json)")
    if not r.in_config:
        details.append("not in the config")
    details += r.notes
    return [
        f"{r.variant}/{r.game}/{r.seed}",
        r.state,
        epoch,
        ret,
        fmt_duration(r.elapsed_s) if r.elapsed_s else "-",
        human(r.disk_bytes) if r.disk_bytes else "-",
        fmt_duration(r.eta_s) if r.state != "completed" and r.eta_s is not None else "-",
        "; ".join(details),
    ]


def run_table(status: SweepStatus, states: set[str] | None = None):
    """One line per run as a single Text: padded columns, the state coloured. (A rich Table
    measures every cell of 330 rows, several times slower than reading the folders.)"""
    from rich.text import Text

    header = ["variant/game/seed", "state", "epoch", "test return", "elapsed", "disk", "ETA",
              "details"]  # fmt: skip
    rows = [(r.state, _row_cells(r)) for r in status.runs if not states or r.state in states]
    widths = [max([len(header[i])] + [len(c[i]) for _, c in rows]) for i in range(7)]
    right = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> list[str]:
        out = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return out + [cells[7]]

    text = Text("  ".join(line(header)).rstrip() + "\n", style="bold")
    for state, cells in rows:
        parts = line(cells)
        text.append(parts[0] + "  ")
        text.append(parts[1], style=STYLE[state])
        text.append("  " + "  ".join(parts[2:]).rstrip() + "\n")
    text.rstrip()
    return text


def summary_lines(status: SweepStatus) -> list[str]:
    s = status.summary
    counts = ", ".join(f"[{STYLE[k]}]{s.counts[k]} {k}[/]" for k in STATES if s.counts[k])
    lines = [f"[bold]{s.total} runs[/]: {counts or 'none'}"]
    remaining = (
        f"{s.run_hours_remaining:.2f} remaining"
        if s.run_hours_remaining is not None
        else "remaining unknown (no run has timed an epoch yet)"
    )
    if s.unestimated and s.run_hours_remaining is not None:
        remaining += f" (+{s.unestimated} runs without an estimate)"
    lines.append(f"run-hours: {s.run_hours_spent:.2f} spent, {remaining}")
    if not status.config and s.gpu_share_per_run is not None:
        lines[-1] += " [dim](GPU share from the runs' devices; --configfile knows packing)[/]"
    if s.gpu_share_per_run is None:
        lines.append("GPU-hours: unknown share of a GPU per run (pass --configfile CONFIG)")
    elif s.gpu_share_per_run == 0:
        lines.append("GPU-hours: 0 (CPU runs)")
    else:
        rem_gpu = (
            f"{s.gpu_hours_remaining:.2f} remaining"
            if s.gpu_hours_remaining is not None
            else "remaining unknown"
        )
        lines.append(
            f"GPU-hours: {s.gpu_hours_spent:.2f} spent, {rem_gpu} "
            f"({s.gpu_share_per_run:g} GPU per run)"
        )
    if s.finish_at is not None:
        when = dt.datetime.fromisoformat(s.finish_at).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        lines.append(
            f"expected finish: {when} (in {fmt_duration(s.finish_eta_s)} at the current "
            f"{s.counts['running']} run(s) at a time)"
        )
    elif s.counts["completed"] == s.total and s.total:
        lines.append("every run is complete")
    else:
        lines.append("expected finish: unknown (no run is running now)")
    free = f"; {human(s.disk_free_bytes)} free there" if s.disk_free_bytes is not None else ""
    lines.append(f"disk: {human(s.disk_bytes)} in the run folders{free}")
    lines.append(f"[dim]estimates from {s.estimate_basis}; read in {status.seconds:.2f} s[/]")
    return lines


def coverage_blocks(status: SweepStatus) -> list[list]:
    """Per variant, the lines (Text) of its games x seeds grid, all of one width."""
    from rich.text import Text

    blocks = []
    for variant, grid in coverage(status).items():
        seeds = [str(s) for s in grid["seeds"]]
        name_w = max([4] + [len(g) for g in grid["games"]])
        cell_w = max([1] + [len(s) for s in seeds])
        head = "game".ljust(name_w) + " " + " ".join(s.rjust(cell_w) for s in seeds) + "  done"
        lines = [Text(variant.center(len(head)), style="bold"), Text(head, style="bold")]
        for game in grid["games"]:
            row = grid["states"][game]
            line = Text(game.ljust(name_w))
            for s in seeds:
                state = row.get(s)
                line.append(" " + " " * (cell_w - 1))
                line.append(SYMBOL[state] if state else " ", style=STYLE.get(state, ""))
            done = sum(v == "completed" for v in row.values())
            line.append(f"  {done}/{len(row)}".rjust(6))
            lines.append(line)
        width = max(len(x) for x in lines)
        blocks.append([x + Text(" " * (width - len(x))) for x in lines])
    return blocks


def coverage_text(status: SweepStatus, width: int):
    """The variants' grids side by side, as many per row as `width` allows."""
    from rich.text import Text

    out, row, used = Text(), [], 0
    rows = []
    for block in coverage_blocks(status):
        w = len(block[0]) + 4
        if row and used + w > width:
            rows.append(row)
            row, used = [], 0
        row.append(block)
        used += w
    if row:
        rows.append(row)
    for blocks in rows:
        for i in range(max(len(b) for b in blocks)):
            for b in blocks:
                out.append(b[i] if i < len(b) else Text(" " * len(b[0])))
                out.append("    ")
            out.rstrip()
            out.append("\n")
    out.rstrip()
    return out


def print_status(status: SweepStatus, console, states: set[str] | None = None, grid: bool = True):
    source = (
        ", ".join(display_path(c) for c in status.config)
        if status.config
        else "run folders only (no config)"
    )
    console.print(
        f"[bold]rem status[/] {escape(status.runs_dir)}  "
        f"[dim]({escape(source)}; {status.generated_at})[/]"
    )
    console.print(run_table(status, states), no_wrap=True, overflow="ellipsis", crop=True)
    console.print()
    failures = failure_lines(status, states)
    if failures:
        console.print(failures, highlight=False)
    for line in summary_lines(status):
        console.print(line)
    for problem in status.problems:
        console.print(f"[yellow]skipped:[/] {escape(problem)}")
    if grid:
        console.print()
        legend = "  ".join(f"[{STYLE[k]}]{SYMBOL[k]}[/] {k}" for k in STATES)
        console.print(f"coverage (games x seeds)  {legend}")
        console.print(coverage_text(status, console.width), no_wrap=True, overflow="ignore")


def save_png(status: SweepStatus, path: str | Path) -> Path:
    """The coverage grid, one panel per variant, as a PNG (atomic write)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from rem.utils.atomic import atomic_write_bytes

    grids = coverage(status)
    n = max(1, len(grids))
    rows = max((len(g["games"]) for g in grids.values()), default=1)
    size = (max(6.0, 1.2 + 2.0 * n), 1.6 + 0.28 * rows)  # wide enough for the legend
    fig, axes = plt.subplots(1, n, figsize=size, squeeze=False)
    cmap = ListedColormap([COLOUR[s] for s in STATES])
    for ax, (variant, grid) in zip(axes[0], grids.items()):
        codes = [
            [STATES.index(grid["states"][g].get(str(s), "pending")) for s in grid["seeds"]]
            for g in grid["games"]
        ]
        ax.imshow(codes, cmap=cmap, vmin=0, vmax=len(STATES) - 1, aspect="auto")
        ax.set_xticks(range(len(grid["seeds"])), [str(s) for s in grid["seeds"]], fontsize=7)
        ax.set_yticks(range(len(grid["games"])), grid["games"], fontsize=7)
        done = sum(v == "completed" for row in grid["states"].values() for v in row.values())
        total = sum(len(row) for row in grid["states"].values())
        ax.set_title(f"{variant}\n{done}/{total} complete", fontsize=8)
        ax.set_xlabel("seed", fontsize=7)
        ax.set_xticks([x - 0.5 for x in range(1, len(grid["seeds"]))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(grid["games"]))], minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="minor", length=0)
    fig.legend(
        handles=[Patch(color=COLOUR[s], label=s) for s in STATES],
        loc="lower center",
        ncol=len(STATES),
        fontsize=7,
        frameon=False,
    )
    fig.suptitle(f"coverage of {status.runs_dir} ({status.generated_at})", fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
