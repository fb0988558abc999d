"""Checkpoints that always resume (issue 16): verify before commit, verify on load, fall back
to the previous checkpoint with a warning, never start over silently; the run-folder lock
names its holder; a finished run is recognised from its own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.training.checkpoint import (
    CheckpointError,
    clean_debris,
    load_checkpoint,
    read_latest,
    save_checkpoint,
)
from rem.training.metrics import MetricsLogger
from rem.training.run_dir import RunDir, RunDirError
from rem.utils.faults import POINTS, watch


def _episode(length: int, ended: bool = True) -> Episode:
    ends = np.zeros(length, np.uint8)
    ends[-1] = ended
    obs = np.full((length, 3, 64, 64), length % 256, np.uint8)
    return Episode(obs, np.zeros(length), np.zeros(length), ends)


def _checkpoints(root, epochs=(1, 2, 3)):
    """Checkpoints of a replay whose open episode grows every epoch (the issue's pattern)."""
    replay = Replay()
    replay.add(_episode(5))
    current = replay.add(_episode(2, ended=False))
    for epoch in epochs:
        replay.extend(current, _episode(3, ended=False))
        save_checkpoint(root, epoch, {"w": torch.full((4,), float(epoch))}, replay.save)
    return replay


def test_a_checkpoint_that_fails_verification_is_never_committed(tmp_path):
    root = tmp_path / "checkpoints"
    replay = _checkpoints(root, (1,))

    def lying_save(folder):  # a replay save whose manifest disagrees with its files
        replay.save(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["episodes"][-1]["length"] += 1
        manifest["num_steps"] += 1
        (folder / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(CheckpointError, match="failed verification and was not committed"):
        save_checkpoint(root, 2, {"w": torch.zeros(4)}, lying_save)
    assert read_latest(root)["epoch"] == 1
    state, _ = load_checkpoint(root)
    assert state["epoch"] == 1
    clean_debris(root)
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", "epoch_000001"]


@pytest.mark.parametrize("damage", ["state", "replay"])
def test_corrupt_latest_falls_back_to_the_previous_with_a_warning(tmp_path, damage):
    root = tmp_path / "checkpoints"
    _checkpoints(root, (2, 4, 6))
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", "epoch_000004", "epoch_000006"]
    if damage == "state":
        path = root / "epoch_000006" / "state.pt"
        path.write_bytes(path.read_bytes()[:-7])
    else:  # a replay file overwritten with garbage
        newest = max(
            (root / "epoch_000006" / "replay" / "episodes").iterdir(), key=os.path.getmtime
        )
        os.unlink(newest)
        newest.write_bytes(b"\0" * 64)
    # strict (rem evaluate, the viewer): a clear error that names the fallback
    with pytest.raises(CheckpointError, match=r"previous checkpoint \(epoch 4\) is kept"):
        load_checkpoint(root)
    warnings = []
    state, folder = load_checkpoint(root, fallback=True, warn=warnings.append)
    assert state["epoch"] == 4 and torch.equal(state["w"], torch.full((4,), 4.0))
    assert folder.name == "epoch_000004"
    assert len(warnings) == 1 and "epoch 6" in warnings[0] and "2 epochs lost" in warnings[0]
    assert read_latest(root)["epoch"] == 4 and read_latest(root)["previous"] is None
    clean_debris(root)  # the bad one stays for inspection
    assert sorted(p.name for p in root.iterdir()) == [
        "LATEST.json",
        "corrupt-epoch_000006",
        "epoch_000004",
    ]
    Replay.load(folder / "replay")  # the fallback's replay is whole


def test_both_checkpoints_corrupt_is_an_error_never_a_fresh_start(tmp_path):
    root = tmp_path / "checkpoints"
    _checkpoints(root, (1, 2))
    for name in ("epoch_000001", "epoch_000002"):
        path = root / name / "state.pt"
        path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="both checkpoints are unusable.*--retrain"):
        load_checkpoint(root, fallback=True, warn=print)


def test_lost_checkpoints_refuse_a_silent_fresh_start(tmp_path):
    run = RunDir(tmp_path / "run")
    logger = MetricsLogger(run.metrics)
    for epoch in (1, 2, 3):
        logger.log({"epoch": epoch})
    run.check_fresh_start(3)  # killed before the first checkpoint (epoch 3): fine
    with pytest.raises(RunDirError, match="records epoch 3.*holds none.*--retrain"):
        run.check_fresh_start(2)


@pytest.mark.parametrize(
    "point, committed, kept",
    [
        ("checkpoint_verified", 2, ["epoch_000001", "epoch_000002"]),
        ("checkpoint_renamed", 2, ["epoch_000001", "epoch_000002"]),
        ("checkpoint_committed", 3, ["epoch_000002", "epoch_000003"]),
    ],
)
def test_sigkill_inside_the_commit(tmp_path, point, committed, kept):
    root = tmp_path / "checkpoints"
    script = textwrap.dedent(
        f"""
        import torch
        from rem.training.checkpoint import save_checkpoint
        for epoch in (1, 2, 3):
            save_checkpoint({str(root)!r}, epoch, {{"x": torch.full((2,), float(epoch))}})
        """
    )
    env = {**os.environ, "REM_TEST_KILL_AT": f"{point}:3"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=600)
    assert proc.returncode == -9
    clean_debris(root)
    assert sorted(p.name for p in root.iterdir()) == ["LATEST.json", *kept]
    state, _ = load_checkpoint(root)
    assert state["epoch"] == committed and torch.equal(state["x"], torch.full((2,), committed))


def test_fault_spec_forms_and_watch():
    script = textwrap.dedent(
        """
        from rem.utils.faults import maybe_kill
        maybe_kill("finish_scores")  # before any epoch is announced
        for epoch in (1, 2):
            maybe_kill("epoch_start", epoch)
            for _ in range(3):
                maybe_kill("collect")  # takes the announced epoch
        """
    )
    cases = {
        "collect@3": -9,  # the 3rd hit in the process
        "collect@4": -9,
        "collect@7": 0,
        "collect:2@1": -9,  # the 1st hit in epoch 2
        "collect:2@4": 0,
        "collect:3": 0,
        "finish_scores": -9,
        "epoch_start:2": -9,
        "nope@1": 1,
        "collect:x": 1,
        "collect@0": 1,
    }
    for spec, rc in cases.items():
        proc = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "REM_TEST_KILL_AT": spec},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == rc, (spec, proc.stderr)
    policy = object()
    assert watch(policy, "collect") is policy  # normal runs: the policy itself
    with pytest.raises(ValueError, match="unknown fault point"):
        watch(policy, "nope")
    assert "replay_write" in POINTS and "finish_scores" in POINTS


def test_second_trainer_refuses_naming_the_holder(tmp_path):
    path = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time\nfrom rem.training.run_dir import RunDir\n"
            f"with RunDir({str(path)!r}).lock():\n    print('held', flush=True)\n"
            "    time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError) as err, RunDir(path).lock():
            pass
        message = str(err.value)
        assert "another `rem train` process" in message and f"pid {holder.pid} on host" in message
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # released when the holder dies
        try:
            with RunDir(path).lock():
                break
        except RunDirError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_stale_replay_is_caught_on_load_but_the_agent_still_loads(tmp_path):
    """What issue 16's bug left behind: a manifest length that disagrees with a file, with
    hashes computed over the stale file. Resuming needs the replay (clear error); evaluating
    the agent does not (`replay=False`, as `rem evaluate --checkpoint` loads it)."""
    from rem.training.checkpoint import _hash_and_sync

    root = tmp_path / "checkpoints"
    _checkpoints(root, (1,))
    manifest = root / "epoch_000001" / "replay" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["episodes"][-1]["length"] += 3
    data["num_steps"] += 3
    manifest.write_text(json.dumps(data))
    latest = json.loads((root / "LATEST.json").read_text())
    latest["files"]["replay/manifest.json"] = _hash_and_sync(manifest)
    (root / "LATEST.json").write_text(json.dumps(latest))
    with pytest.raises(CheckpointError, match=r"replay of .* is inconsistent: .* holds 5 steps"):
        load_checkpoint(root)
    state, _ = load_checkpoint(root, replay=False)
    assert state["epoch"] == 1
