#!/usr/bin/env python3
"""Run a command on its own GPU(s) of a multi-GPU workstation.

    python with_gpu.py --gpus N -- COMMAND ...

Snakemake's `gpu` resource (profiles/local: `resources: gpu=<number of GPUs>`) bounds how many
GPU jobs run at once but does not say which device each one gets; without this, every job
would land on cuda:0. Each GPU is a slot guarded by an exclusive `flock` on
`$REM_GPU_LOCK_DIR/gpu<i>.lock` (default `.snakemake/gpu-locks`); the job takes N free slots,
sets CUDA_VISIBLE_DEVICES to them and execs the command, which inherits the locks; the kernel
drops them when it ends, however it ends, so a killed job never leaks a GPU.

With `--gpus 0`, or when CUDA_VISIBLE_DEVICES is already set (SLURM sets it for `--gpus`),
the command runs unchanged.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def count_gpus() -> int:
    """Visible NVIDIA GPUs (nvidia-smi -L), without importing torch."""
    if shutil.which("nvidia-smi") is None:
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def acquire(n: int, total: int, lock_dir: Path, timeout_s: float) -> tuple[list[int], list]:
    """Take n free GPU slots out of total; polls until timeout_s (Snakemake's `gpu` resource
    normally guarantees enough are free)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        held, handles = [], []
        for i in range(total):
            handle = open(lock_dir / f"gpu{i}.lock", "w")  # noqa: SIM115 - held until exit
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held.append(i)
            handles.append(handle)
            if len(held) == n:
                return held, handles
        for handle in handles:
            handle.close()
        if time.monotonic() > deadline:
            raise SystemExit(
                f"with_gpu: no {n} free GPU(s) of {total} after {timeout_s:.0f} s; run Snakemake "
                f"with `--resources gpu={total}` (profiles/local does) so it never starts more "
                "GPU jobs than there are GPUs"
            )
        time.sleep(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, required=True, help="GPUs this job needs")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a GPU")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("missing the command to run after --")
    if args.gpus <= 0 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        os.execvp(command[0], command)
    total = count_gpus()
    if total < args.gpus:
        raise SystemExit(
            f"with_gpu: the job asks for {args.gpus} GPU(s) but nvidia-smi sees {total}; set "
            "resources.train.gpu: 0 in the workflow config for a CPU run"
        )
    lock_dir = Path(os.environ.get("REM_GPU_LOCK_DIR", ".snakemake/gpu-locks"))
    gpus, _handles = acquire(args.gpus, total, lock_dir, args.timeout)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
    print(f"with_gpu: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", flush=True)
    # flock locks belong to the open file, so inheritable handles keep them held by the
    # command itself after exec (signals then reach it directly, no wrapper in between).
    for handle in _handles:
        os.set_inheritable(handle.fileno(), True)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
