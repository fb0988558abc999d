"""Health alarms: a non-finite loss or gradient stops the run at once (rem.training.health).

The check reads nothing from the device inside a step (it looks at the phase summary the
trainer already reads once per phase); a real quick run with a NaN injected into one world
model step (REM_TEST_NAN_AT) stops with one clear line naming the component, epoch and step,
keeps its last committed checkpoint intact, leaves the failure in metrics.jsonl, the manifest
and failures.json, and a retry says in its log that the run stopped there before.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a repository folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.checks import SyncRecorder  # noqa: E402
from rem.training.health import (  # noqa: E402
    NAN_VAR,
    NonFiniteError,
    check_phase,
    nan_hook,
    previous_failures_note,
)
from rem.training.step import summarise_phase  # noqa: E402

# A short quick run: no evaluations before the final one, checkpoints every 2 epochs; the
# world model trains from epoch 3 (quick preset).
OVERRIDES = ["run.epochs=4", "evaluation.every=100", "evaluation.final_episodes=1"]


def _rows(values: list[float], norms: list[float]):
    rows = [{"loss": torch.tensor(v), "loss_obs": torch.tensor(v / 2)} for v in values]
    return rows, [torch.tensor(n) for n in norms]


def test_a_healthy_phase_passes_without_reading_the_device():
    rows, norms = _rows([1.0, 0.5, 0.25], [3.0, 2.0, 1.0])
    summary = summarise_phase(rows, "world_model/train", norms)
    rec = SyncRecorder()
    with rec:
        check_phase("world_model", 7, summary, rows, norms)
    assert rec.report()["total_in_rem"] == 0, rec.hits


def test_the_first_bad_step_is_named():
    rows, norms = _rows([1.0, 0.5, math.nan, 0.1], [3.0, 2.0, math.nan, math.nan])
    summary = summarise_phase(rows, "world_model/train", norms)
    with pytest.raises(NonFiniteError, match=r"non-finite world_model loss at epoch 7, step 3/4"):
        check_phase("world_model", 7, summary, rows, norms)
    rows, norms = _rows([1.0, 0.5], [3.0, math.inf])  # finite loss, exploding gradient
    summary = summarise_phase(rows, "actor_critic/train", norms)
    with pytest.raises(NonFiniteError) as info:
        check_phase("actor_critic", 12, summary, rows, norms)
    err = info.value
    assert (err.component, err.epoch, err.step, err.what) == ("actor_critic", 12, 2, "gradient")
    assert "last committed checkpoint is intact" in str(err)


def test_nan_hook_is_the_loss_itself_unless_asked(monkeypatch):
    def loss(batch):
        return torch.tensor(2.0), {"loss": torch.tensor(2.0)}

    monkeypatch.delenv(NAN_VAR, raising=False)
    assert nan_hook("world_model", 3, loss) is loss
    monkeypatch.setenv(NAN_VAR, "world_model:3:2")
    assert nan_hook("tokenizer", 3, loss) is loss and nan_hook("world_model", 4, loss) is loss
    hooked = nan_hook("world_model", 3, loss)
    values = [hooked(None)[0].item() for _ in range(3)]
    assert values[0] == 2.0 and math.isnan(values[1]) and values[2] == 2.0
    monkeypatch.setenv(NAN_VAR, "world_model")
    with pytest.raises(ValueError, match="COMPONENT:EPOCH"):
        nan_hook("world_model", 3, loss)


def _train(run_dir: Path, nan: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != NAN_VAR}
    if nan:
        env[NAN_VAR] = nan
    cmd = [sys.executable, "-m", "rem", "train", "--game", "Breakout", "--seed", "0",
           "--run-dir", str(run_dir), "--preset", "quick", *OVERRIDES]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_a_nan_stops_the_run_and_a_retry_says_it_happened_before(tmp_path):
    from rem.training.checkpoint import verify_state_file

    run = tmp_path / "run"
    first = _train(run, "world_model:3:2")
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-3000:]
    err = first.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in first.stderr, first.stderr
    assert err[0].startswith(
        "rem train: error: non-finite world_model loss at epoch 3, step 2/8"
    ), err
    # The epoch-2 checkpoint is the last one, and intact; epoch 3 wrote none.
    latest = json.loads((run / "checkpoints" / "LATEST.json").read_text())
    assert latest["epoch"] == 2
    assert verify_state_file(run / "checkpoints")["epoch"] == 2
    assert not (run / "checkpoints" / "epoch_000003").exists()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3] and lines[-1]["failed"] is True
    assert lines[-1]["failure/component"] == "world_model" and lines[-1]["failure/step"] == 2
    assert "time/elapsed" in lines[1] and lines[1]["time/elapsed"] >= lines[0]["time/elapsed"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "epoch 3, step 2/8" in manifest["error"]
    failures = json.loads((run / "failures.json").read_text())
    assert [(f["component"], f["epoch"], f["step"]) for f in failures] == [("world_model", 3, 2)]
    assert failures[0]["resumed_from_epoch"] == 0

    # The workflow retries: the same deterministic failure, and the log says so up front.
    second = _train(run, "world_model:3:2")
    assert second.returncode == 1
    assert "resuming" in second.stdout and "from the checkpoint of epoch 2" in second.stdout
    note = next(line for line in second.stdout.splitlines() if "stopped 1 time(s) before" in line)
    assert "world_model at epoch 3 step 2" in note and "resumed from epoch 0" in note
    failures = json.loads((run / "failures.json").read_text())
    assert [f["epoch"] for f in failures] == [3, 3] and failures[1]["resumed_from_epoch"] == 2
    # The metrics file reads as if the first stop never happened, then the second one.
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3] and lines[-1]["failed"] is True
    assert "the same epoch 3 each time" in previous_failures_note(run)
