"""Disk use of run folders: bytes per kind measured, and the bytes a run of a config needs.

Kinds of a run folder (rem.training.run_dir, rem.training.checkpoint):
    replay       checkpoints/*/replay/: the replay's episode files; the two kept checkpoints
                 share unchanged files by hard links, so every file is counted once
    checkpoints  checkpoints/*/state.pt (models, AdamW moments, collector, RNG) and LATEST.json
    snapshots    snapshots/: kept checkpoints of `run.snapshot_every` (hard-linked state.pt)
    media        media/: reconstruction PNGs and the saved train / test / imagination episodes
    logs         everything else: metrics.jsonl, manifest.json, scores.json, failures.json...

Sizes are apparent file sizes (st_size), each inode counted once. An estimate for a config
comes from rates measured on finished runs: replay bytes per agent step, the state file's
bytes, media per saved episode and per evaluation, log bytes per epoch. Rates measured with
another preset are scaled (marked so): the state file by the models' parameter bytes
(weights + AdamW's two moments, counted on torch's meta device), saved episodes by the
episode length cap, the replay by the frame size.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rem.config import Config
from rem.data.replay import MANIFEST as REPLAY_MANIFEST
from rem.runs.layout import (
    CHECKPOINTS,
    COMPLETED,
    EPISODES,
    LATEST,
    MANIFEST,
    MEDIA,
    METRICS,
    RECONSTRUCTIONS,
    REPLAY,
    SNAPSHOTS,
    STATE,
    checkpoints_dir,
)

LOGS = "logs"  # the kind of every file outside the folders the other kinds are named after
KINDS = (REPLAY, CHECKPOINTS, SNAPSHOTS, MEDIA, LOGS)
EPISODE_SETS = ("train", "test", "imagination")
KEPT_CHECKPOINTS = 2  # rem.training.checkpoint keeps the newest two
ACTIONS_FOR_SIZE = 18  # the full Atari action set: the action heads' share is tiny


class DiskError(RuntimeError):
    """Not enough free space for a run, or nothing to estimate from; the message says which."""


@dataclass
class RunDisk:
    """What one run folder holds on disk."""

    path: str
    bytes: dict[str, int]  # kind -> bytes
    replay_steps: int = 0  # steps in the newest checkpoint's replay
    state_bytes: int = 0  # the largest state.pt
    episode_files: dict[str, list[int]] = field(default_factory=dict)  # set -> file sizes
    reconstruction_bytes: int = 0
    evaluations: int = 0  # evaluations whose reconstructions are saved
    epochs: int = 0  # epoch lines in metrics.jsonl
    preset_cfg: dict[str, Any] | None = None  # the run's resolved config (manifest)

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def _kind(rel: Path) -> str:
    top = rel.parts[0]
    if top == CHECKPOINTS:
        return REPLAY if REPLAY in rel.parts else CHECKPOINTS
    return top if top in (SNAPSHOTS, MEDIA) else LOGS


def _replay_steps(checkpoints: Path) -> int:
    try:
        latest = json.loads((checkpoints / LATEST).read_text())
        manifest = checkpoints / latest["name"] / REPLAY / REPLAY_MANIFEST
        return int(json.loads(manifest.read_text())["num_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def measure_run(path: str | Path) -> RunDisk:
    """Bytes per kind of one run folder (each inode once) and the figures rates need."""
    root = Path(path)
    out = RunDisk(str(root), {k: 0 for k in KINDS})
    seen: set[tuple[int, int]] = set()
    for dirpath, names in _files_checkpoints_first(root):
        for name in names:
            full = Path(dirpath) / name
            try:
                st = full.lstat()
            except OSError:  # deleted while we walk (a trainer replacing a checkpoint)
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            rel = full.relative_to(root)
            out.bytes[_kind(rel)] += st.st_size
            _note_detail(out, rel, st.st_size)
    out.replay_steps = _replay_steps(checkpoints_dir(root))
    out.epochs, out.preset_cfg = _metrics_and_config(root)
    return out


def _files_checkpoints_first(root: Path):
    """(folder, file names) under `root`, snapshots last: a snapshot's state.pt is a hard
    link of a checkpoint's, so its bytes count as the checkpoint's while that one exists."""
    try:
        tops = sorted(os.scandir(root), key=lambda e: (e.name == SNAPSHOTS, e.name))
    except OSError:
        return
    loose = [e.name for e in tops if not e.is_dir(follow_symlinks=False)]
    yield str(root), loose
    for entry in tops:
        if entry.is_dir(follow_symlinks=False):
            for dirpath, _, names in os.walk(entry.path):
                yield dirpath, names


def _note_detail(out: RunDisk, rel: Path, size: int) -> None:
    parts = rel.parts
    if parts[0] == CHECKPOINTS and rel.name == STATE:
        out.state_bytes = max(out.state_bytes, size)
    elif parts[:2] == (MEDIA, EPISODES) and len(parts) == 4:
        out.episode_files.setdefault(parts[2], []).append(size)
    elif parts[:2] == (MEDIA, RECONSTRUCTIONS):
        out.reconstruction_bytes += size
        if rel.name.endswith("_t_000.png"):
            out.evaluations += 1


def _metrics_and_config(root: Path) -> tuple[int, dict[str, Any] | None]:
    epochs = 0
    try:
        with open(root / METRICS, "rb") as f:
            epochs = sum(1 for line in f if line.strip() and b'"final"' not in line)
    except OSError:
        pass
    try:
        cfg = json.loads((root / MANIFEST).read_text()).get("config")
    except (OSError, ValueError):
        cfg = None
    return epochs, cfg


# ----------------------------------------------------------------------------- rates


@dataclass
class Rates:
    """Per-unit disk figures an estimate is made from, and where they were measured."""

    replay_per_step: float
    state_bytes: float  # one state.pt
    state_overhead: float  # state.pt minus the models' parameter bytes (collector, RNG...)
    episode_bytes: dict[str, float]  # saved episode file, mean per set
    reconstruction_per_eval: float
    logs_per_epoch: float
    runs: int
    source: str
    measured_cfg: dict[str, Any] = field(default_factory=dict)  # the runs' config


@functools.lru_cache(maxsize=16)
def _model_bytes_cached(key: str) -> int:
    import torch

    from rem.config import config_from_dict
    from rem.models.agent import build_agent

    cfg = config_from_dict(json.loads(key))
    with torch.device("meta"):
        agent = build_agent(cfg, ACTIONS_FOR_SIZE, load_perceptual_weights=False)
    trained = sum(p.numel() * p.element_size() for p in agent.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in agent.parameters() if not p.requires_grad)
    buffers = sum(b.numel() * b.element_size() for b in agent.buffers())
    return 3 * trained + frozen + buffers  # weights + AdamW's exp_avg and exp_avg_sq


def model_bytes(cfg: Config) -> int:
    """Bytes of the agent's weights and AdamW moments in a state file (no weights built)."""
    return _model_bytes_cached(json.dumps(cfg.to_dict(), sort_keys=True))


def rates_from_runs(runs: list[RunDisk], source: str) -> Rates | None:
    """Median rates over runs that hold a replay and a state file (None: no such run)."""
    from rem.config import config_from_dict

    usable = [r for r in runs if r.replay_steps and r.state_bytes and r.preset_cfg]
    if not usable:
        return None
    cfg = config_from_dict(usable[0].preset_cfg)
    state = statistics.median(r.state_bytes for r in usable)
    episodes = {}
    for kind in EPISODE_SETS:
        sizes = [s for r in usable for s in r.episode_files.get(kind, [])]
        episodes[kind] = statistics.mean(sizes) if sizes else 0.0
    evals = [r.reconstruction_bytes / r.evaluations for r in usable if r.evaluations]
    return Rates(
        replay_per_step=statistics.median(r.bytes[REPLAY] / r.replay_steps for r in usable),
        state_bytes=state,
        state_overhead=max(0.0, state - model_bytes(cfg)),
        episode_bytes=episodes,
        reconstruction_per_eval=statistics.median(evals) if evals else 0.0,
        logs_per_epoch=statistics.median(r.bytes[LOGS] / max(1, r.epochs) for r in usable),
        runs=len(usable),
        source=source,
        measured_cfg=usable[0].preset_cfg,
    )


def analytic_rates(cfg: Config) -> Rates:
    """Rates with nothing measured: the replay's raw frame bytes (uint8 3 x size x size per
    step, plus action, reward and end) and the models' parameter bytes; media and logs 0.
    A lower bound, said so in its source."""
    frame = 3 * cfg.env.size * cfg.env.size + 8 + 4 + 1
    state = float(model_bytes(cfg))
    return Rates(
        replay_per_step=float(frame),
        state_bytes=state,
        state_overhead=0.0,
        episode_bytes={k: 0.0 for k in EPISODE_SETS},
        reconstruction_per_eval=0.0,
        logs_per_epoch=0.0,
        runs=0,
        source="no finished run measured: raw frame bytes and parameter counts, a lower bound",
        measured_cfg=cfg.to_dict(),
    )


def measure_runs(folders: list[Path], source: str) -> Rates | None:
    """Rates from the finished runs among `folders` (a COMPLETED marker)."""
    done = [measure_run(p) for p in folders if (Path(p) / COMPLETED).is_file()]
    return rates_from_runs(done, source)


# ----------------------------------------------------------------------------- estimates


@dataclass
class RunEstimate:
    """Bytes one run of a config will hold when finished, per kind."""

    bytes: dict[str, float]
    agent_steps: int
    scaled: bool  # rates measured with another config, scaled to this one
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.bytes.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def agent_steps(cfg: Config) -> int:
    """Env steps a run collects: steps per epoch x collection epochs."""
    epochs = min(cfg.run.epochs, cfg.collection.stop_after_epochs)
    return cfg.collection.steps_per_epoch * epochs


def _episode_caps(cfg: Config) -> dict[str, float]:
    """Length caps of saved episodes per set (agent steps; imagination: its horizon)."""
    skip = cfg.env.frame_skip
    return {
        "train": cfg.env.train_max_raw_frames / skip,
        "test": cfg.env.test_max_raw_frames / skip,
        "imagination": float(cfg.actor_critic.imagination_horizon),
    }


def estimate_run(cfg: Config, rates: Rates) -> RunEstimate:
    """Bytes of one finished run of `cfg`, from `rates` (scaled when measured elsewhere)."""
    from rem.config import config_from_dict
    from rem.training.media import KEEP  # torch: loaded only when an estimate is made

    measured = config_from_dict(rates.measured_cfg)
    scaled = measured.to_dict() != cfg.to_dict()
    notes = []
    pixels = (cfg.env.size / measured.env.size) ** 2
    steps = agent_steps(cfg)
    state = rates.state_bytes
    if scaled:
        state = rates.state_overhead + model_bytes(cfg)
        notes.append("state file scaled by the models' parameter bytes (weights + AdamW moments)")
    snapshots = cfg.run.epochs // cfg.run.snapshot_every if cfg.run.snapshot_every else 0
    caps, caps_measured = _episode_caps(cfg), _episode_caps(measured)
    episodes = 0.0
    for kind in EPISODE_SETS:
        ratio = caps[kind] / caps_measured[kind] if scaled else 1.0
        if ratio > 1:
            notes.append(
                f"saved {kind} episodes scaled by the episode cap (x{ratio:.0f}): an upper "
                "bound, real episodes end earlier"
            )
        episodes += (KEEP[kind] + 1) * rates.episode_bytes.get(kind, 0.0) * ratio * pixels
    evaluations = cfg.run.epochs // cfg.evaluation.every if cfg.run.save_media else 0
    media = episodes + evaluations * rates.reconstruction_per_eval if cfg.run.save_media else 0
    return RunEstimate(
        bytes={
            REPLAY: rates.replay_per_step * pixels * steps,
            CHECKPOINTS: KEPT_CHECKPOINTS * state,
            SNAPSHOTS: snapshots * state,
            MEDIA: float(media),
            LOGS: rates.logs_per_epoch * cfg.run.epochs,
        },
        agent_steps=steps,
        scaled=scaled,
        source=rates.source,
        notes=notes,
    )


# ----------------------------------------------------------------------------- free space


def free_bytes(path: str | Path) -> int:
    """Free bytes for an unprivileged writer on the file system of `path` (or its nearest
    existing parent: the runs folder may not exist yet)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def human(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as df -H)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def check_headroom(run_dir: str | Path, needed: float, margin: float) -> str | None:
    """None when the free space of `run_dir`'s file system covers `needed` bytes plus the
    margin (a fraction of `needed`); else the one-line refusal with the numbers."""
    free = free_bytes(run_dir)
    want = needed * (1 + margin)
    if free >= want:
        return None
    return (
        f"not enough disk for {run_dir}: the run needs about {human(needed)} more "
        f"(+{margin:.0%} margin = {human(want)}), its file system has {human(free)} free; "
        "free space, point --run-dir elsewhere, or lower the margin (--disk-margin)"
    )
