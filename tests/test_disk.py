"""Disk use of run folders (rem/training/disk.py), snapshots (rem/training/snapshot.py) and
the headroom check of `rem train` (the free-space reading monkeypatched in-process)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import rem.training.disk as disk
from rem.cli import main as rem_main
from rem.config import config_from_dict, load_config
from rem.training.disk import estimate_run, measure_run, rates_from_runs
from rem.training.restore import open_run
from rem.training.snapshot import save_snapshot


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def test_kinds_are_measured_and_hard_links_count_once(tmp_path):
    run = tmp_path / "run"
    ep = _write(run / "checkpoints/epoch_000002/replay/episodes/a.npz", 1000)
    (run / "checkpoints/epoch_000004/replay/episodes").mkdir(parents=True)
    os.link(ep, run / "checkpoints/epoch_000004/replay/episodes/a.npz")  # shared, as saves do
    _write(run / "checkpoints/epoch_000004/replay/episodes/b.npz", 500)
    _write(run / "checkpoints/epoch_000002/state.pt", 300)
    _write(run / "checkpoints/epoch_000004/state.pt", 400)
    _write(run / "media/episodes/test/episode_0_epoch_2.pt", 70)
    _write(run / "media/reconstructions/epoch_002_t_000.png", 9)
    _write(run / "snapshots/epoch_000002/checkpoints/epoch_000002/state.pt", 300)
    kept = run / "snapshots/epoch_000004/checkpoints/epoch_000004"
    kept.mkdir(parents=True)
    os.link(run / "checkpoints/epoch_000004/state.pt", kept / "state.pt")  # as snapshots do
    _write(run / "metrics.jsonl", 11)
    m = measure_run(run)
    # the linked state.pt counts as the checkpoint's, whatever order the folder lists
    assert m.bytes == {"replay": 1500, "checkpoints": 700, "snapshots": 300, "media": 79,
                       "logs": 11}  # fmt: skip
    assert m.state_bytes == 400 and m.evaluations == 1 and m.episode_files == {"test": [70]}


def test_estimate_from_a_real_quick_run_matches_it_and_scales_to_the_paper(quick_run_dir):
    measured = measure_run(quick_run_dir)
    assert measured.replay_steps > 0 and measured.state_bytes > 0
    rates = rates_from_runs([measured], "the quick run")
    # the replay of a 64x64 RGB frame: at least its raw bytes per step, at most 2x (versions)
    assert 3 * 64 * 64 <= rates.replay_per_step <= 2 * 3 * 64 * 64 + 200
    manifest = json.loads((quick_run_dir / "manifest.json").read_text())
    cfg = config_from_dict(manifest["config"])
    same = estimate_run(cfg, rates)
    assert not same.scaled
    assert same.bytes["replay"] == pytest.approx(measured.bytes["replay"], rel=0.05)
    assert same.bytes["checkpoints"] == pytest.approx(measured.bytes["checkpoints"], rel=0.1)
    paper = estimate_run(load_config("paper"), rates)
    assert paper.scaled and paper.agent_steps == 100_000
    assert paper.bytes["replay"] == pytest.approx(rates.replay_per_step * 100_000)
    # paper models: 12.5M trained parameters x 3 (weights + AdamW) + the frozen VGG/LPIPS
    assert 150e6 < paper.bytes["checkpoints"] / 2 < 400e6
    assert any("upper bound" in n for n in paper.notes)
    snaps = estimate_run(load_config("paper", None, ["run.snapshot_every=100"]), rates)
    assert snaps.bytes["snapshots"] == pytest.approx(6 * paper.bytes["checkpoints"] / 2)


def test_a_snapshot_is_a_run_folder_of_that_epoch(tmp_path, quick_run_dir):
    run = tmp_path / "run"
    shutil.copytree(quick_run_dir, run)
    snap = save_snapshot(run, 6)
    assert snap == run / "snapshots" / "epoch_000006"
    state = snap / "checkpoints" / "epoch_000006" / "state.pt"
    assert state.stat().st_ino == (run / "checkpoints/epoch_000006/state.pt").stat().st_ino
    _, _, manifest = open_run(snap)
    assert manifest["checkpoint_epoch"] == 6
    with pytest.raises(ValueError, match="no committed checkpoint of epoch 4"):
        save_snapshot(run, 4)  # epoch 4's is the fallback, not the latest


def test_rem_train_refuses_when_the_disk_is_too_small(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(disk, "free_bytes", lambda path: 5_000_000)
    run_dir = tmp_path / "runs" / "rem" / "Breakout" / "0"
    code = rem_main(["train", "--game", "Breakout", "--seed", "0", "--run-dir", str(run_dir),
                     "--preset", "quick"])  # fmt: skip
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rem train: error: not enough disk for ")
    assert "5.0 MB free" in line and "+10% margin" in line and "--disk-margin" in line
    assert not (run_dir / "manifest.json").exists()  # nothing written


def test_the_margin_is_configurable_and_checked(tmp_path, monkeypatch, capsys):
    from rem.ops.plan import headroom

    cfg = load_config("quick")
    run_dir = tmp_path / "runs" / "rem" / "Pong" / "0"
    monkeypatch.setattr(disk, "free_bytes", lambda path: 10**15)
    assert headroom(cfg, run_dir, 0.1) is None
    needed = estimate_run(cfg, disk.analytic_rates(cfg)).total
    monkeypatch.setattr(disk, "free_bytes", lambda path: int(needed * 1.5))
    assert headroom(cfg, run_dir, 0.2) is None  # no finished run anywhere: the lower bound
    assert "+100% margin" in headroom(cfg, run_dir, 1.0)
    code = rem_main(["train", "--game", "Pong", "--seed", "0", "--run-dir", str(run_dir),
                     "--preset", "quick", "--disk-margin", "-1"])  # fmt: skip
    assert code == 2 and "--disk-margin -1.0: a fraction >= 0" in capsys.readouterr().err
