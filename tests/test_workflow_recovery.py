"""Recovery of the workflow (issue 16), with real Snakemake and a real `rem train`.

One short run (quick preset, 3 epochs) through a copy of the workflow, so editing a rule
does not touch the repository:

- Snakemake SIGKILLed while its training job runs (a lost login node): the job's `rem train`
  runs on. docs/recovery.md's steps: the same command stops on Snakemake's lock; `--unlock`;
  the same command again while the orphan still trains: the new trainer refuses, naming the
  orphan's pid (never two writers); once the orphan is done, the same command finishes
  without retraining (rerun-incomplete comes from profiles/default).
- A changed line in the train rule plans nothing (rerun-triggers in profiles/default), for
  the README's plain command; without the profile Snakemake would re-run the job.
- `--forcerun train` re-runs the job, which only writes COMPLETED again (the safety net).
- `rem train --retrain` is the deliberate way to train a finished run again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RUN = "runs/quick/rem/Breakout/0"
TARGET = f"{RUN}/COMPLETED"
TRAIN_LOG = "logs/quick/train/rem/Breakout/0.log"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _copy_workflow(dest: Path) -> None:
    shutil.copy(ROOT / "Snakefile", dest / "Snakefile")
    shutil.copy(ROOT / "environment.yml", dest / "environment.yml")
    for folder in ("workflow", "config", "profiles", "results/published"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # an exited orphan nobody has reaped yet counts as gone


class Flow:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "run.yaml"

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "snakemake", "--configfile", str(self.config), *args]

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("REM_TEST_KILL_AT", None)
        return subprocess.run(
            self.cmd(*args), cwd=self.root, capture_output=True, text=True, timeout=timeout, env=env
        )

    def sessions(self) -> list[dict]:
        return json.loads((self.root / RUN / "manifest.json").read_text())["sessions"]


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    root = tmp_path_factory.mktemp("recovery")
    _copy_workflow(root)
    cfg = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    cfg["seeds"] = [0]
    cfg["variants"] = [{"name": "rem", "games": ["Breakout"], "overrides": ["run.epochs=3"]}]
    (root / "run.yaml").write_text(yaml.safe_dump(cfg))
    return Flow(root)


@pytest.fixture(scope="module")
def recovered(flow):
    """Snakemake killed mid-training, then the documented recovery; returns what it saw."""
    seen = {}
    with open(flow.root / "first.log", "w") as log:
        first = subprocess.Popen(
            flow.cmd("--cores", "1", TARGET),
            cwd=flow.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        lock = flow.root / RUN / ".lock"
        deadline = time.monotonic() + 1200  # a slow, shared CI machine: imports take a while
        try:
            while not (lock.is_file() and lock.read_text().startswith("pid ")):
                assert first.poll() is None, (flow.root / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the training job never started"
                time.sleep(0.5)
        except BaseException:
            os.killpg(first.pid, signal.SIGKILL)  # Snakemake and its job: leave nothing behind
            raise
        trainer = int(lock.read_text().split()[1])
        os.kill(trainer, signal.SIGSTOP)  # keeps the orphan mid-run, whatever the machine's speed
        first.kill()  # SIGKILL to Snakemake alone: its job's process tree lives on
        first.wait()
    assert _alive(trainer)
    try:
        seen["locked"] = flow.run("--cores", "1", TARGET)
        seen["unlock"] = flow.run("--unlock", TARGET)
        seen["while_orphan"] = flow.run("--cores", "1", TARGET)
        seen["train_log"] = (flow.root / TRAIN_LOG).read_text()
        seen["orphan_alive"] = _alive(trainer)
    finally:
        os.kill(trainer, signal.SIGCONT)
    deadline = time.monotonic() + 900
    while _alive(trainer):
        assert time.monotonic() < deadline, "the orphaned trainer did not finish"
        time.sleep(1)
    start = time.perf_counter()
    seen["after"] = flow.run("--cores", "1", TARGET)
    seen["after_seconds"] = time.perf_counter() - start
    seen["trainer"] = trainer
    return seen


def test_snakemake_killed_recovery(flow, recovered):
    locked = recovered["locked"]
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert recovered["unlock"].returncode == 0, recovered["unlock"].stderr[-3000:]
    # the orphan holds the run folder: the new trainer refuses and names it, writing nothing
    while_orphan = recovered["while_orphan"]
    assert while_orphan.returncode != 0 and recovered["orphan_alive"]
    pid = recovered["trainer"]
    assert (
        f"another `rem train` process is using {RUN}: pid {pid} on host" in (recovered["train_log"])
    )
    after = recovered["after"]
    assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-3000:]
    assert (flow.root / TARGET).is_file()
    assert [s["from_epoch"] for s in flow.sessions()] == [0]  # trained once, by the orphan
    scores = json.loads((flow.root / RUN / "scores.json").read_text())
    assert scores["epochs"] == 3 and scores["episodes"] == 3


def test_changed_train_rule_plans_nothing(flow, recovered):
    assert recovered["after"].returncode == 0
    rule = flow.root / "workflow" / "rules" / "train.smk"
    text = rule.read_text()
    assert text.count("== job start on") == 1  # the echo line of the shell command
    rule.write_text(text.replace("== job start on", "== training job start on"))
    dry = flow.run("-n", TARGET)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    # what the profile prevents: Snakemake's default triggers would re-run the job
    plain = flow.run("-n", "--workflow-profile", "none", TARGET)
    assert "rule train" in plain.stdout and "Code has changed" in plain.stdout
    real = flow.run("--cores", "1", TARGET)
    assert real.returncode == 0 and "rule train" not in real.stdout + real.stderr
    assert [s["from_epoch"] for s in flow.sessions()] == [0]


def test_forcerun_only_rewrites_completed(flow, recovered):
    assert recovered["after"].returncode == 0
    before = (flow.root / RUN / "metrics.jsonl").read_text()
    proc = flow.run("--cores", "1", "--forcerun", "train", "--", TARGET)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "COMPLETED written again, nothing retrained" in (flow.root / TRAIN_LOG).read_text()
    assert (flow.root / RUN / "metrics.jsonl").read_text() == before
    assert [s["from_epoch"] for s in flow.sessions()] == [0]


def test_retrain_flag_trains_again_from_scratch(flow, recovered):
    assert recovered["after"].returncode == 0
    rem = Path(sys.executable).with_name("rem")
    base = [str(rem), "train", "--game", "Breakout", "--seed", "0", "--variant", "rem"]
    base += ["--run-dir", RUN, "--preset", "quick", "run.epochs=1"]
    refused = subprocess.run(base, cwd=flow.root, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "run.epochs: 3 (folder) vs 1 (now)" in refused.stderr
    proc = subprocess.run(
        [*base, "--retrain"], cwd=flow.root, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--retrain: deleted COMPLETED, scores.json, checkpoints" in proc.stdout
    assert [s["from_epoch"] for s in flow.sessions()] == [0]
    assert json.loads((flow.root / RUN / "scores.json").read_text())["epochs"] == 1
