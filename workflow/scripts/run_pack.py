#!/usr/bin/env python3
"""Run the K training runs of one pack side by side in this job (on its one GPU).

    run_pack.py --threads T SPEC_JSON

SPEC_JSON: a JSON list of {"run": "variant/game/seed", "cmd": [...], "log": PATH,
"attempts": PATH}. Each run gets exactly what a single `train` job would give it: its own
process (OMP/MKL threads = T), its own log (this attempt) and attempts log (every attempt,
each starting with the `== job start on HOST at TIME (SLURM job ID)` line `rem status`
reads). The runs resume independently (each `rem train` resumes its own run folder); one
that fails does not stop the others. Exit status 0 only if every run succeeded, so the
workflow retries the pack, and with it only what is unfinished: a finished run's
`rem train` just writes its COMPLETED again. SIGTERM/SIGINT (scancel, time limit) are passed
on to every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path


def _copy(stream, paths: list[Path], attempts_mode: list[str]) -> None:
    """Copy a run's output line by line to its log and attempts log (like `tee -a`)."""
    files = [open(p, m, buffering=1) for p, m in zip(paths, attempts_mode)]  # noqa: SIM115
    try:
        for line in iter(stream.readline, ""):
            for f in files:
                f.write(line)
    finally:
        for f in files:
            f.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("spec", help="JSON list of the runs (see the module docstring)")
    args = parser.parse_args()
    runs = json.loads(args.spec)
    host = socket.gethostname()
    job = os.environ.get("SLURM_JOB_ID", "none")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    procs, copiers = [], []
    for i, run in enumerate(runs, 1):
        log, attempts = Path(run["log"]), Path(run["attempts"])
        for p in (log, attempts):
            p.parent.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        header = (
            f"== job start on {host} at {stamp} (SLURM job {job}) "
            f"[run {i} of {len(runs)} sharing this job]\n"
        )
        log.write_text(header)
        with open(attempts, "a") as f:
            f.write(header)
        proc = subprocess.Popen(
            run["cmd"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=False,
        )
        print(f"pack: started {run['run']} (pid {proc.pid})", flush=True)
        copier = threading.Thread(
            target=_copy, args=(proc.stdout, [log, attempts], ["a", "a"]), daemon=True
        )
        copier.start()
        procs.append(proc)
        copiers.append(copier)

    def forward(signum, _frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [proc.wait() for proc in procs]
    for copier in copiers:
        copier.join(timeout=10)
    failed = [(run["run"], code) for run, code in zip(runs, codes) if code != 0]
    for run, code in zip(runs, codes):
        print(f"pack: {run['run']} exited with {code}", flush=True)
    if failed:
        print(
            f"pack: {len(failed)} of {len(runs)} run(s) failed: "
            + ", ".join(f"{r} ({c})" for r, c in failed)
            + "; the retry resumes them from their checkpoints",
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
