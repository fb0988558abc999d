"""`rem status` on real quick-preset run folders: every state, the summary, the grid, bad input.

The sweep (variant rem, Breakout and Pong x seeds 0-3) holds a finished run (the session's
quick run, Breakout seed 3), a run stopped by a NaN in the world model, a run SIGKILLed after
epoch 2, a run that is training while the tests read it (and reads as stalled an hour
later), and four runs that never started (Pong). The logs are laid out as the workflow
writes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from training_helpers import GAME, SEED, TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "config" / "quick.yaml"
SHORT = ["evaluation.every=100", "evaluation.final_episodes=1"]

pytestmark = pytest.mark.slow  # three short trainings in the module's fixture


def _start(workdir: Path, seed: int, overrides: list[str], env_extra: dict) -> subprocess.Popen:
    """`rem train` for rem/Breakout/<seed>, its output in the workflow's log files."""
    log = workdir / "logs" / "train" / "rem" / "Breakout" / f"{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    header = f"== job start on {socket.gethostname()} at 2026-01-01T00:00:00Z (SLURM job none)\n"
    log.write_text(header)
    log.with_name(f"{seed}.attempts.log").write_text(header)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REM_TEST_")}
    env.update(env_extra, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "rem", "train", "--game", "Breakout", "--seed", str(seed),
           "--run-dir", f"runs/rem/Breakout/{seed}", "--preset", "quick", *overrides]  # fmt: skip
    return subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env,
        stdout=open(log, "a"),
        stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,  # its own process group: SIGSTOP reaches all of it
    )


def _group_states(pgid: int) -> list[str]:
    """The scheduler state (R, S, D, T, ...) of every thread of every process in `pgid`."""
    states = []
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            fields = task.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            states.append(fields[0])
    return states


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGSTOP the process group of `proc` and wait until every thread of it has stopped:
    the signal is asynchronous, and a thread still running may finish a write after it."""
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, 19)  # SIGSTOP
    deadline = time.monotonic() + 120
    while True:
        states = _group_states(pgid)
        if states and all(state in "Tt" for state in states):
            return
        assert time.monotonic() < deadline, f"process group {pgid} did not stop: {states}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, quick_run_dir):
    workdir = tmp_path_factory.mktemp("sweep")
    cfg = yaml.safe_load(QUICK.read_text())
    cfg.update(
        runs_dir="runs",
        logs_dir="logs",
        variants=[{"name": "rem", "games": ["Breakout", "Pong"], "seeds": [0, 1, 2, 3]}],
    )
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert (GAME, SEED) == ("Breakout", 3)  # the session's quick run completes the grid
    shutil.copytree(quick_run_dir, workdir / "runs" / "rem" / GAME / str(SEED))
    nan = _start(workdir, 0, ["run.epochs=4", *SHORT], {"REM_TEST_NAN_AT": "world_model:3:2"})
    killed = _start(workdir, 1, ["run.epochs=4", *SHORT], {"REM_TEST_KILL_AT": "epoch_end:2"})
    running = _start(workdir, 2, ["run.epochs=200", *SHORT], {})
    try:
        assert nan.wait(timeout=TIMEOUT_S) == 1  # hang guards: slow under load, never hung
        assert killed.wait(timeout=TIMEOUT_S) == -9
        metrics = workdir / "runs" / "rem" / "Breakout" / "2" / "metrics.jsonl"
        deadline = time.monotonic() + TIMEOUT_S
        while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
            assert running.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        yield workdir, config, running
    finally:
        running.kill()
        running.wait()


def _status(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rem", "status", *args],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _by_run(data: dict) -> dict[str, dict]:
    return {f"{r['game']}/{r['seed']}": r for r in data["runs"]}


def test_every_state_from_real_run_folders(sweep):
    workdir, config, running = sweep
    proc = _status(workdir, "--configfile", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    runs = _by_run(data)
    assert data["summary"]["counts"] == {
        "pending": 4, "running": 1, "stalled": 0, "failed": 2, "completed": 1,
    }  # fmt: skip
    done = runs["Breakout/3"]
    scores = json.loads((workdir / "runs/rem/Breakout/3/scores.json").read_text())
    assert done["state"] == "completed" and (done["epoch"], done["epochs"]) == (6, 6)
    assert done["test_return"] == pytest.approx(scores["mean_return"])
    assert done["elapsed_s"] > 0 and done["eta_s"] == 0
    nan = runs["Breakout/0"]
    assert nan["state"] == "failed" and nan["epoch"] == 2 and nan["failures"] == 1
    assert nan["error"].startswith("non-finite world_model loss at epoch 3, step 2/8")
    assert nan["log"] == "logs/train/rem/Breakout/0.log"
    killed = runs["Breakout/1"]
    assert killed["state"] == "failed" and killed["epoch"] == 2 and killed["epochs"] == 4
    assert "stopped after epoch 2 without an error in its log" in killed["error"]
    assert killed["eta_s"] > 0 and killed["slurm_job"] is None
    live = runs["Breakout/2"]
    assert live["state"] == "running" and live["pid"] == running.pid and live["epochs"] == 200
    assert live["epoch"] >= 1 and live["eta_s"] > 0 and live["epoch_s"] > 0
    assert {runs[f"Pong/{s}"]["state"] for s in (0, 1, 2, 3)} == {"pending"}
    assert runs["Pong/0"]["epochs"] == 6 and runs["Pong/0"]["epoch"] is None
    summary = data["summary"]
    assert summary["gpu_share_per_run"] == 0  # quick: resources.train.gpu 0
    assert summary["run_hours_spent"] > 0 and summary["run_hours_remaining"] > 0
    assert summary["parallelism"] == 1 and summary["finish_at"] is not None
    assert data["coverage"]["rem"]["states"]["Breakout"] == {
        "0": "failed", "1": "failed", "2": "running", "3": "completed",
    }  # fmt: skip


def test_a_run_without_new_epochs_for_long_reads_as_stalled(sweep):
    from rem.ops.status import collect
    from rem.runs.sweep import load_sweep

    workdir, config, _ = sweep
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        plan = load_sweep([config])
        now = collect(plan.runs_dir, sweep=plan, logs_dir=plan.logs_dir)
        later = collect(plan.runs_dir, sweep=plan, logs_dir=plan.logs_dir, now=time.time() + 3600)
    finally:
        os.chdir(cwd)
    live = {r.label if hasattr(r, "label") else f"{r.game}/{r.seed}": r for r in later.runs}
    assert {r.state for r in now.runs if r.game == "Breakout" and r.seed == 2} == {"running"}
    stalled = live["Breakout/2"]
    assert stalled.state == "stalled" and stalled.error.startswith("no new epoch for")
    assert later.summary.counts["stalled"] == 1


def test_terminal_report_grid_and_png(sweep, tmp_path):
    workdir, config, _ = sweep
    png = tmp_path / "grid.png"
    proc = _status(workdir, "--configfile", str(config), "--png", str(png))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rem/Breakout/0" in out and "non-finite world_model loss at epoch 3" in out
    assert "log logs/train/rem/Breakout/0.log" in out
    assert "8 runs" in out and "expected finish" in out and "coverage" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    only = _status(workdir, "--configfile", str(config), "--state", "failed", "--no-grid")
    rows = [line for line in only.stdout.splitlines() if line.startswith("rem/")]
    assert [row.split()[0] for row in rows] == ["rem/Breakout/0", "rem/Breakout/1"]


def test_status_never_writes(sweep):
    workdir, config, running = sweep
    _stop_group(running)  # the live run must not change the folder meanwhile
    try:

        def snapshot():
            return {
                str(p): (p.stat().st_mtime_ns, p.stat().st_size)
                for p in sorted(workdir.rglob("*"))
                if p.is_file()
            }

        before = snapshot()
        assert _status(workdir, "--configfile", str(config), "--json").returncode == 0
        assert _status(workdir, "runs", "--logs-dir", "logs").returncode == 0
        assert snapshot() == before
    finally:
        os.killpg(os.getpgid(running.pid), 18)  # SIGCONT


def test_half_written_and_corrupted_lines_and_missing_manifest(sweep, tmp_path):
    workdir, _, _ = sweep
    runs = tmp_path / "runs" / "rem" / "Breakout"
    shutil.copytree(workdir / "runs" / "rem" / "Breakout" / "3", runs / "3")
    shutil.copytree(workdir / "runs" / "rem" / "Breakout" / "1", runs / "1")
    with open(runs / "3" / "metrics.jsonl", "a") as f:  # a trainer writing at this moment
        f.write('{"epoch": 7, "time/epo')
    lines = (runs / "1" / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines[0] = lines[0][:40] + "\n"  # a corrupted line
    (runs / "1" / "metrics.jsonl").write_text("".join(lines))
    (runs / "1" / "manifest.json").unlink()
    proc = _status(tmp_path, "runs", "--json")
    assert proc.returncode == 0, proc.stderr
    got = _by_run(json.loads(proc.stdout))
    assert got["Breakout/3"]["state"] == "completed" and got["Breakout/3"]["notes"] == []
    # Only the last line can be a write in progress: a bad earlier one is named, and the
    # run's progress is unknown rather than read around it (rem.utils.jsonl).
    assert got["Breakout/1"]["state"] == "failed" and got["Breakout/1"]["epoch"] is None
    assert any("metrics.jsonl:1: not a JSON object" in n for n in got["Breakout/1"]["notes"])
    assert any("no manifest.json" in note for note in got["Breakout/1"]["notes"])


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (None, ["nowhere"], "runs folder nowhere does not exist"),
        ("other", ["other"], "other holds no REM run folders"),
        ("empty", ["empty"], "empty holds no REM run folders"),
        (None, ["--configfile", "missing.yaml"], "config file missing.yaml does not exist"),
        ("badyaml", ["--configfile", "bad.yaml"], "bad.yaml is not valid YAML"),
        ("badkey", ["--configfile", "bad.yaml"], "invalid workflow config: key seeds"),
        (None, ["--state", "done"], "unknown state(s) done"),
    ],
)
def test_bad_input_is_one_line_never_a_traceback(tmp_path, setup, args, message):
    if setup == "other":  # another project's run folders
        (tmp_path / "other" / "exp1" / "lr" / "0").mkdir(parents=True)
        (tmp_path / "other" / "exp1" / "lr" / "0" / "manifest.json").write_text('{"name": "x"}')
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "notes.txt").write_text("hello")
    elif setup == "badyaml":
        (tmp_path / "bad.yaml").write_text("seeds: [0, 1\nvariants: x\n")
    elif setup == "badkey":
        (tmp_path / "bad.yaml").write_text("seeds: '0,1'\n")
    proc = _status(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("rem status: error: ") and message in lines[0], lines[0]


def test_a_slurm_time_limit_is_read_from_the_slurm_log(sweep, tmp_path):
    """A job killed by SLURM leaves nothing in the run's own log; SLURM's log says why."""
    workdir, _, _ = sweep
    shutil.copytree(workdir / "runs" / "rem" / "Breakout" / "1", tmp_path / "runs/rem/Krull/0")
    logs = tmp_path / "logs" / "train" / "rem" / "Krull"
    logs.mkdir(parents=True)
    (logs / "0.log").write_text("== job start on node7 at 2026-01-01T00:00:00Z (SLURM job 4242)\n")
    (logs / "0.attempts.log").write_text((logs / "0.log").read_text())
    slurm = tmp_path / "logs" / "slurm" / "rule_train" / "rem_Krull_0" / "4242.log"
    slurm.parent.mkdir(parents=True)
    slurm.write_text(
        "epoch 2/4 | 10.0s\n"
        "slurmstepd: error: *** JOB 4242 ON node7 CANCELLED AT 2026-01-01T12:00:00 DUE TO "
        "TIME LIMIT ***\n"
    )
    proc = _status(tmp_path, "runs", "--logs-dir", "logs", "--json")
    run = json.loads(proc.stdout)["runs"][0]
    assert run["state"] == "failed" and run["slurm_job"] == "4242"
    assert "DUE TO TIME LIMIT" in run["error"]
    assert f"SLURM log {slurm.relative_to(tmp_path)}" in run["notes"]


def test_watch_refreshes_until_ctrl_c(sweep):
    workdir, config, _ = sweep
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "rem", "status", "--configfile",
         str(config), "--watch", "0.2", "--no-grid"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a suite started in the background (`cmd &` in a script) inherits SIGINT ignored,
        # and Python keeps an ignored SIGINT ignored: give the child a terminal's default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen = 0
    while seen < 2:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        seen += line.startswith("rem status ")
    proc.send_signal(2)  # SIGINT, as Ctrl-C
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(6)  # SIGABRT: faulthandler prints where every thread is stuck
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"rem status --watch did not end 60 s after Ctrl-C; its stacks:\n{err[-4000:]}")
    assert proc.returncode == 0 and "Traceback" not in err, err
