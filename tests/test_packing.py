"""Several training runs per GPU (config `packing`, docs/operations.md).

- per-run jobs (workstation, profiles/local): workflow/scripts/with_gpu.py pins each job to
  one of K slots of a GPU: the choice itself, real concurrent processes on two (named) GPUs,
  and Snakemake really running K training jobs at once on one GPU (`--resources gpu=1`);
- per-gpu jobs (SLURM): K quick runs train side by side inside ONE SLURM job of the real
  one-node cluster (scripts/slurm/one_node.sh); one of them is killed mid-run, the pack job is
  retried, and each run resumes on its own (the killed one from its checkpoint, the finished
  one is not retrained).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
QUICK = ROOT / "config" / "quick.yaml"
_IN_CI = os.environ.get("CI", "").lower() == "true"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


with_gpu = _load("with_gpu")


# ----------------------------------------------------------------------------- slot choice


def test_runs_spread_over_gpus_before_sharing_one():
    choose = with_gpu.choose
    assert choose({0: [0, 1], 1: [0, 1]}, 1, 2) == [(0, 0)]
    assert choose({0: [1], 1: [0, 1]}, 1, 2) == [(1, 0)]  # the emptier GPU
    assert choose({0: [1], 1: [1]}, 1, 2) == [(0, 1)]  # then doubling up
    assert choose({0: [], 1: []}, 1, 2) is None
    assert choose({0: [0, 1, 2], 1: [2]}, 2, 3) == [(0, 0), (0, 1)]  # 2 slots of one GPU


def test_whole_gpu_jobs_need_every_slot_free():
    choose = with_gpu.choose
    assert choose({0: [1], 1: [0, 1]}, 2, 2) == [(1, 0), (1, 1)]
    assert choose({0: [1], 1: [0]}, 2, 2) is None  # 2 free slots, but on two GPUs
    assert choose({0: [0, 1], 1: [0, 1]}, 4, 2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert choose({0: [0]}, 1, 1) == [(0, 0)]  # K = 1: a slot is a GPU


def _start(lock_dir: Path, stop: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """A with_gpu.py job that prints its CUDA_VISIBLE_DEVICES and holds its slot(s) until
    `stop` exists; returns it and the devices it got."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(REM_GPU_IDS="0,1", REM_GPU_LOCK_DIR=str(lock_dir))
    child = (
        "import os, sys, time, pathlib; print('got', os.environ['CUDA_VISIBLE_DEVICES'], "
        "flush=True)\nwhile not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.05)"
    )
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "with_gpu.py"), *args, "--",
         sys.executable, "-c", child, str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline()
    while line.startswith("with_gpu:"):  # its own announcement, then the child's line
        line = proc.stdout.readline()
    return proc, line.split()[-1] if line.startswith("got") else ""


def test_k_jobs_per_gpu_get_their_own_slots(tmp_path):
    """Four one-slot jobs on 2 GPUs x 2 slots: two per GPU; a fifth waits (here: times out);
    a whole-GPU job gets a GPU only once both of its slots are free."""
    locks = tmp_path / "locks"
    stops = [tmp_path / f"stop{i}" for i in range(4)]
    jobs = [_start(locks, stop, "--slots", "1", "--runs-per-gpu", "2") for stop in stops]
    try:
        devices = [dev for _, dev in jobs]
        assert devices == ["0", "1", "0", "1"], devices  # spread, then doubled up
        fifth = subprocess.run(
            [sys.executable, str(SCRIPTS / "with_gpu.py"), "--slots", "1", "--runs-per-gpu",
             "2", "--timeout", "0", "--", "true"],
            capture_output=True, text=True,
            env={**os.environ, "REM_GPU_IDS": "0,1", "REM_GPU_LOCK_DIR": str(locks),
                 "CUDA_VISIBLE_DEVICES": ""},
        )  # fmt: skip
        assert fifth.returncode != 0 and "no 1 slot(s) free on GPUs [0, 1]" in fifth.stderr
        for i in (1, 3):  # the two jobs on GPU 1 finish
            stops[i].touch()
            jobs[i][0].wait(timeout=30)
        whole, dev = _start(locks, tmp_path / "stop_whole", "--gpus", "1", "--runs-per-gpu", "2")
        assert dev == "1"  # the GPU whose two slots are free, not GPU 0 (still shared)
        (tmp_path / "stop_whole").touch()
        assert whole.wait(timeout=30) == 0
    finally:
        for stop in stops:
            stop.touch()
        for proc, _ in jobs:
            proc.wait(timeout=30)
    assert all(proc.returncode == 0 for proc, _ in jobs)


def test_slot_counts_must_be_a_part_of_one_gpu_or_whole_gpus(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "with_gpu.py"), "--slots", "3", "--runs-per-gpu", "2",
         "--", "true"],
        capture_output=True, text=True,
        env={**os.environ, "REM_GPU_IDS": "0,1", "REM_GPU_LOCK_DIR": str(tmp_path),
             "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert proc.returncode == 2 and "whole GPUs (a multiple of 2)" in proc.stderr


# ----------------------------------------------------------------------------- the workflow


def _config(tmp_path: Path, packing: dict, epochs: int = 4, **extra) -> Path:
    """quick.yaml with two short Breakout runs of `rem` (`epochs` epochs, no evaluations but
    the final one, a checkpoint every 2 epochs)."""
    cfg = yaml.safe_load(QUICK.read_text())
    cfg["variants"] = [
        {
            "name": "rem",
            "games": ["Breakout"],
            "seeds": [0, 1],
            "overrides": [
                f"run.epochs={epochs}",
                "evaluation.every=100",
                "evaluation.final_episodes=1",
                "env.test_max_raw_frames=400",
            ],
        }
    ]
    cfg["packing"] = packing
    cfg.update(extra)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), *args]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env or os.environ, cwd=workdir
    )


def _targets(cfg: dict) -> list[str]:
    return [f"{cfg['runs_dir']}/rem/Breakout/{s}/COMPLETED" for s in (0, 1)]


def test_per_gpu_packing_cuts_the_runs_into_packs_of_k(tmp_path):
    cfg = yaml.safe_load(QUICK.read_text())  # 8 runs
    cfg["packing"] = {"runs_per_gpu": 3, "jobs": "per-gpu"}
    cfg["resources"]["train"] = {"threads": 2, "gpu": 1, "mem_mb": 1000, "runtime": 10}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp_path, "-n", "-p", "--cores", "8", "--configfile", str(path))
    assert proc.returncode == 0, proc.stderr
    packs = {}
    for block in proc.stdout.split("rule train_pack_")[1:]:
        index = int(block.split(":")[0])
        packs[index] = block.split("output: ")[1].split("\n")[0].split(", ")
        resources = block.split("resources: ")[1].split("\n")[0]
        assert "gpu=1" in resources and f"mem_mb={1000 * len(packs[index])}" in resources
        assert f"threads: {2 * len(packs[index])}" in block
    assert sorted(len(p) for p in packs.values()) == [2, 3, 3]
    assert len({m for p in packs.values() for m in p}) == 8  # every run once
    assert "rule train:" not in proc.stdout
    assert "run_pack.py --threads 2" in proc.stdout and "with_gpu.py --gpus 1" in proc.stdout


def test_config_rejects_packing_with_several_gpus_per_run(tmp_path):
    path = _config(
        tmp_path,
        {"runs_per_gpu": 2},
        resources={"train": {"threads": 1, "gpu": 2, "mem_mb": 1000, "runtime": 10}},
    )
    proc = _snakemake(tmp_path, "-n", "--configfile", str(path))
    assert proc.returncode != 0
    assert "packing.runs_per_gpu 2 shares one GPU" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_snakemake_runs_k_training_jobs_at_once_on_one_gpu(tmp_path):
    """`--resources gpu=1` with runs_per_gpu 2: both training jobs run at the same time,
    each on its own slot of GPU 0 (REM_GPU_IDS names a GPU; the runs train on the CPU)."""
    path = _config(
        tmp_path,
        {"runs_per_gpu": 2, "jobs": "per-run"},
        epochs=2,
        resources={"train": {"threads": 1, "gpu": 1, "mem_mb": 1000, "runtime": 10}},
    )
    cfg = yaml.safe_load(path.read_text())
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(REM_GPU_IDS="0", OMP_NUM_THREADS="1")
    proc = _snakemake(
        tmp_path, *_targets(cfg), "--cores", "2", "--resources", "gpu=1",
        "--configfile", str(path), env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    logs = [
        (tmp_path / cfg["logs_dir"] / "train" / "rem" / "Breakout" / f"{s}.log").read_text()
        for s in (0, 1)
    ]
    slots = sorted(line.split("(")[-1].rstrip(")") for log in logs for line in log.splitlines()
                   if line.startswith("with_gpu:"))  # fmt: skip
    # Two slots taken means both jobs held one at the same time (one after the other would
    # both have taken slot 0): Snakemake counted gpu=1 as 2 slots.
    assert slots == ["gpu0.slot0", "gpu0.slot1"], logs
    for s in (0, 1):
        assert (tmp_path / cfg["runs_dir"] / "rem" / "Breakout" / str(s) / "COMPLETED").exists()


# ----------------------------------------------------------------------------- SLURM

slurm = pytest.mark.skipif(
    not _IN_CI and (not hasattr(os, "geteuid") or os.geteuid() != 0),
    reason="needs root (installs SLURM)",
)
slurm_apt = pytest.mark.skipif(
    not _IN_CI and shutil.which("apt-get") is None and shutil.which("slurmctld") is None,
    reason="needs apt-get to install SLURM (Debian/Ubuntu)",
)


@pytest.fixture(scope="module")
def cluster():
    script = ROOT / "scripts" / "slurm" / "one_node.sh"
    subprocess.run([str(script), "up"], check=True, timeout=900)
    yield
    subprocess.run([str(script), "down"], check=True, timeout=120)


def _latest(run: Path) -> int:
    try:
        return int(json.loads((run / "checkpoints" / "LATEST.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _kill_after_checkpoint(run: Path, record: dict, stop: threading.Event) -> None:
    """SIGKILL the `rem train` of `run` (the pid its .lock names) once it has a checkpoint."""
    while not stop.is_set():
        text = (run / ".lock").read_text() if (run / ".lock").exists() else ""
        if _latest(run) >= 2 and text.startswith("pid ") and not (run / "COMPLETED").exists():
            pid = int(text.split()[1])
            os.kill(pid, signal.SIGKILL)
            record.update(pid=pid, epoch=_latest(run))
            return
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(900)
@slurm
@slurm_apt
def test_slurm_packs_k_runs_in_one_job_each_resumable(cluster, tmp_path):
    path = _config(tmp_path, {"runs_per_gpu": 2, "jobs": "per-gpu"}, retries=1)
    cfg = yaml.safe_load(path.read_text())
    runs = [tmp_path / cfg["runs_dir"] / "rem" / "Breakout" / str(s) for s in (0, 1)]
    record: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_after_checkpoint, args=(runs[1], record, stop))
    watcher.start()
    try:
        proc = _snakemake(
            tmp_path, *_targets(cfg), "--profile", str(ROOT / "profiles" / "slurm"),
            "--configfile", str(path), "--slurm-init-seconds-before-status-checks", "5",
            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=840,
        )  # fmt: skip
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert record.get("pid"), "the watcher never saw run 1 after a checkpoint"
    logs = tmp_path / cfg["logs_dir"] / "train" / "rem" / "Breakout"
    jobs = []
    for s in (0, 1):
        headers = [
            line for line in (logs / f"{s}.attempts.log").read_text().splitlines()
            if line.startswith("== job start")
        ]  # fmt: skip
        assert len(headers) >= 2, headers  # the pack job and its retry(s)
        jobs.append([h.split("(SLURM job ")[1].split(")")[0] for h in headers])
    # Both runs trained inside one SLURM job, and were retried together (the rule's
    # `retries` restart the pack inside its job while the job still holds its GPU).
    assert jobs[0] == jobs[1] and "none" not in jobs[0], jobs
    sessions = [json.loads((run / "manifest.json").read_text())["sessions"] for run in runs]
    started = [s[0]["started_at"] for s in sessions]
    assert started[0][:16] == started[1][:16]  # side by side: started within the same minute
    # The finished run was not retrained; the killed one resumed from its checkpoint.
    assert len(sessions[0]) == 1
    assert "nothing retrained" in (logs / "0.log").read_text()
    assert len(sessions[1]) == 2 and sessions[1][1]["from_epoch"] >= record["epoch"] >= 2
    epochs = [
        json.loads(line)["epoch"]
        for line in (runs[1] / "metrics.jsonl").read_text().splitlines()
        if "final" not in line
    ]
    assert epochs == [1, 2, 3, 4]
    assert all((run / "COMPLETED").exists() for run in runs)
    # `rem status` reads the pack's runs like any other: complete, with their SLURM job.
    status = subprocess.run(
        [sys.executable, "-m", "rem", "status", "--configfile", str(path), "--json"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    runs_json = {r["seed"]: r for r in json.loads(status.stdout)["runs"]}
    assert {r["state"] for r in runs_json.values()} == {"completed"}
    assert runs_json[1]["slurm_job"] == jobs[1][1]
