"""How much the tokenizer's token ids move while the world model learns them.

The world model's targets are the tokenizer's token ids of the next frame. While the tokenizer
still trains, the same frame maps to other ids from one epoch to the next, so the world model
chases a moving target. This compares the tokenizers of several checkpoints of one run on the
same frames (drawn evenly from the newest checkpoint's replay):

    rem diagnose tokenizer-drift runs/learning/rem/Boxing/1
    rem diagnose tokenizer-drift RUN_DIR --states copies/epoch_5.pt copies/epoch_10.pt

Without `--states` it compares the run's two committed checkpoints (the latest and the one
kept before it). A live run keeps only these two, so to follow a whole run copy each
`checkpoints/epoch_N/state.pt` while it trains. Prints, per consecutive pair: the share of
token ids that changed and the number of codes in use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rem.config import ConfigError
from rem.data.replay import Replay, ReplayError
from rem.diagnostics import one_line_errors
from rem.models.agent import build_agent
from rem.runs.layout import STATE, checkpoints_dir
from rem.training.checkpoint import CheckpointError, load_state_file, read_latest
from rem.training.restore import latest_replay, read_run
from rem.training.run_dir import RunDirError
from rem.utils.atomic import atomic_write_text


def probe_frames(replay: Replay, count: int) -> torch.Tensor:
    """`count` frames spread evenly over the replay -> (count, 3, 64, 64) float in [0, 1]."""
    frames = np.concatenate([np.asarray(ep.observations) for ep in replay.episodes()])
    picks = np.linspace(0, len(frames) - 1, num=min(count, len(frames))).astype(int)
    return torch.from_numpy(frames[picks]).float() / 255.0


def committed_states(run_dir: Path) -> list[Path]:
    """state.pt of the kept previous checkpoint and of the latest one, oldest first."""
    record = read_latest(checkpoints_dir(run_dir))
    if record is None:
        raise FileNotFoundError(
            f"{run_dir} has no committed checkpoint yet: wait for the first one"
        )
    names = [record["previous"]["name"]] if record.get("previous") else []
    return [checkpoints_dir(run_dir) / name / STATE for name in [*names, record["name"]]]


@torch.no_grad()
def tokens_of(
    states: list[Path], run_dir: Path, frames: torch.Tensor
) -> tuple[list[int], list[torch.Tensor]]:
    """-> (each state's epoch, token ids (n, K) of `frames` under its tokenizer)."""
    info = read_run(run_dir)
    agent = build_agent(info.cfg, len(info.meanings), load_perceptual_weights=False).eval()
    epochs, tokens = [], []
    for path in states:
        state = load_state_file(path)  # weights_only: never runs code in the file
        agent.load_state_dict(state["agent"])
        epochs.append(int(state["epoch"]))
        tokens.append(agent.tokenizer.encode(frames).tokens.flatten(1))
    return epochs, tokens


def run(argv: list[str] | None = None, prog: str | None = None) -> None:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--states", type=Path, nargs="+", help="state.pt files, oldest first")
    p.add_argument("--frames", type=int, default=512)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    states = args.states or committed_states(args.run_dir)
    replay = latest_replay(args.run_dir)
    epochs, tokens = tokens_of(states, args.run_dir, probe_frames(replay, args.frames))
    rows = [
        {
            "from_epoch": epochs[i],
            "to_epoch": epochs[i + 1],
            "tokens_changed": float((tokens[i] != tokens[i + 1]).float().mean()),
            "codes_used": int(tokens[i + 1].unique().numel()),
        }
        for i in range(len(states) - 1)
    ]
    print(f"{'epochs':>12} {'tokens changed':>15} {'codes used':>11}")
    for r in rows:
        span = f"{r['from_epoch']} -> {r['to_epoch']}"
        print(f"{span:>12} {r['tokens_changed']:>15.3f} {r['codes_used']:>11}")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    expected = (ConfigError, RunDirError, CheckpointError, ReplayError, FileNotFoundError)
    return one_line_errors(run, argv, prog or "tokenizer_drift", expected)


if __name__ == "__main__":
    raise SystemExit(main())
