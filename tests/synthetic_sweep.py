"""A synthetic sweep of run folders, to time `rem status` on the paper's 330 runs.

    python tests/synthetic_sweep.py DIR [--seed 0]
    rem status --configfile DIR/config.yaml

Writes DIR/config.yaml (the paper protocol's variants, runs_dir DIR/runs, logs_dir
DIR/logs) and, per run, a folder shaped like the trainer's: manifest.json (the resolved
paper config, one session), metrics.jsonl with full-size epoch lines (every key a paper
epoch logs, test returns every 10th epoch), logs in the workflow's layout. About 40% of
the runs are complete (600 epochs, final line, scores.json, COMPLETED), 30% stopped midway
(no process holds them: they read as failed, the most expensive state: logs are read) and
30% never started. A test fixture: nothing in rem/ uses it; it feeds timing and tests.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import yaml

from rem.runs.layout import COMPLETED, LOCK, MANIFEST, METRICS, SCORES, RunKey, run_path
from rem.runs.sweep import DEFAULT_CONFIG, expand_runs, validate

# The keys of one paper epoch line (rem.training.trainer), values filled per epoch.
EPOCH_KEYS = (
    ["collection/steps", "collection/episodes", "collection/return", "collection/length"]
    + ["collection/total_steps", "collection/total_episodes", "replay/steps", "replay/episodes"]
    + ["time/collection", "time/tokenizer", "time/world_model", "time/actor_critic"]
    + [
        f"{c}/train/{m}"
        for c, ms in (
            ("tokenizer", ["commitment_loss", "reconstruction_loss", "perceptual_loss", "loss"]),
            ("world_model", ["loss", "loss_obs", "loss_reward", "loss_end"]),
            ("actor_critic", ["loss", "loss_actor", "loss_value", "loss_entropy", "entropy"]),
        )
        for m in ms + ["grad_norm_mean", "grad_norm_max", "grad_norm_min"]
    ]
)
EVAL_KEYS = (
    ["test/return_std", "test/length_mean", "test/episodes"]
    + [f"tokenizer/eval/{m}" for m in ("commitment_loss", "reconstruction_loss", "loss")]
    + [f"world_model/eval/{m}" for m in ("loss", "loss_obs", "loss_reward", "loss_end")]
    + ["imagination/return_mean", "imagination/length_mean"]
)
# The final evaluation's line of a completed run (after its epoch).
FINAL_LINE = {"final": True, "final/mean_return": 50.0, "final/eval_seconds": 90.0}


def _epoch_line(rng: random.Random, epoch: int, elapsed: float, seconds: float) -> dict:
    line: dict[str, Any] = {"epoch": epoch}
    line.update({k: rng.random() * 10 for k in EPOCH_KEYS})
    if epoch % 10 == 0:
        line.update({k: rng.random() * 10 for k in EVAL_KEYS})
        line["test/return_mean"] = rng.random() * 100
        line["test/returns"] = [rng.random() * 100 for _ in range(16)]
        line["imagination/action_histogram"] = [1 / 18] * 18
    line["time/evaluation"] = 0.0
    line["time/epoch"] = seconds
    line["time/elapsed"] = elapsed
    return line


def write_sweep(root: str | Path, seed: int = 0) -> Path:
    """Write the synthetic sweep under `root`; returns its config file."""
    from rem.config import load_config

    root = Path(root)
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    cfg.update(runs_dir=str(root / "runs"), logs_dir=str(root / "logs"))
    config_path = root / "config.yaml"
    root.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    validate(cfg)
    runs, _ = expand_runs(cfg)
    rng = random.Random(seed)
    configs = {v: load_config(cfg["preset"], v).to_dict() for v in {r.variant for r in runs}}
    for key in runs:
        roll = rng.random()
        if roll >= 0.7:
            continue  # pending: no folder
        epochs = configs[key.variant]["run"]["epochs"]
        done = roll < 0.4
        last = epochs if done else rng.randint(1, epochs - 1)
        folder = run_path(root / "runs", key)
        folder.mkdir(parents=True)
        manifest = _manifest(key, configs[key.variant], cfg["preset"], done)
        (folder / MANIFEST).write_text(json.dumps(manifest))
        lines = _metrics_lines(rng, last)
        if done:
            lines.append(json.dumps({"epoch": epochs} | FINAL_LINE))
            (folder / SCORES).write_text(json.dumps({"mean_return": 50.0}))
            (folder / COMPLETED).write_text("completed\n")
        (folder / METRICS).write_text("\n".join(lines) + "\n")
        (folder / LOCK).write_text("pid 4242 on host gpu-node-07, since 2026-01-01: rem train\n")
        _write_logs(root, key, last, epochs, len(lines))
    return config_path


def _manifest(key: RunKey, config: dict, preset: str, done: bool) -> dict[str, Any]:
    """A trainer's manifest.json: the resolved config and one session on a GPU node."""
    return {
        "game": key.game,
        "variant": key.variant,
        "seed": key.seed,
        "config": config,
        "preset": preset,
        "device": "cuda:0",
        "device_name": "NVIDIA H100 80GB HBM3",
        "status": "completed" if done else "running",
        "started_at": "2026-01-01T00:00:00+00:00",
        "sessions": [
            {
                "started_at": "2026-01-01T00:00:00+00:00",
                "from_epoch": 0,
                "host": "gpu-node-07",
                "pid": 4242,
            }
        ],
    }


def _metrics_lines(rng: random.Random, last: int) -> list[str]:
    """metrics.jsonl lines of epochs 1..last, each 30-40 s."""
    lines, elapsed = [], 0.0
    for epoch in range(1, last + 1):
        seconds = 30.0 + 10 * rng.random()
        elapsed += seconds
        lines.append(json.dumps(_epoch_line(rng, epoch, elapsed, seconds)))
    return lines


def _write_logs(root: Path, key: RunKey, last: int, epochs: int, n_lines: int) -> None:
    """The job's log and attempts log in the workflow's layout (logs/train/...)."""
    log = root / "logs" / "train" / key.variant / key.game / f"{key.seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    header = f"== job start on gpu-node-07 at 2026-01-01T00:00:00Z (SLURM job {1000 + n_lines})\n"
    log.write_text(header + "".join(f"epoch {i}/{epochs} | 30.0s\n" for i in range(1, last + 1)))
    log.with_name(f"{key.seed}.attempts.log").write_text(log.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/synthetic_sweep.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dir", help="empty folder to write the sweep into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if root.exists() and any(root.iterdir()):
        print(f"{root} is not empty; give a new folder", file=sys.stderr)
        return 2
    path = write_sweep(root, args.seed)
    print(f"wrote {path}; time it with: rem status --configfile {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
