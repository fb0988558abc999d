#!/usr/bin/env python3
"""Run a command on its own GPU slot(s) of a multi-GPU workstation.

    python with_gpu.py --gpus N -- COMMAND ...                      # N whole GPUs
    python with_gpu.py --slots S --runs-per-gpu K -- COMMAND ...    # S slots, K per GPU

Snakemake's `gpu` resource (profiles/local: `--resources gpu=<number of GPUs>`) bounds how
many GPU jobs run at once but does not say which device each one gets; without this, every
job would land on cuda:0. Each GPU has K slots (the workflow config's
`packing.runs_per_gpu`, 1 by default), each guarded by an exclusive `flock` on
`$REM_GPU_LOCK_DIR/gpu<i>.slot<j>.lock` (default `.snakemake/gpu-locks`). A job takes
  - S < K slots: S slots of one GPU, the one with the most free slots (a training run that
    shares its GPU with up to K - 1 others);
  - S = n * K slots: n whole GPUs (every slot of each: nothing else shares them).
It sets CUDA_VISIBLE_DEVICES to those GPUs and execs the command, which inherits the locks;
the kernel drops them when it ends, however it ends, so a killed job never leaks a slot.

The GPUs are the ones `nvidia-smi -L` lists, or `$REM_GPU_IDS` (e.g. `0,2`: use only these).
With no slot asked for, or when CUDA_VISIBLE_DEVICES is already set (SLURM sets it for
`--gpus`), the command runs unchanged. All jobs of a machine must use the same K.
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


def gpu_ids() -> list[int]:
    """$REM_GPU_IDS, else the NVIDIA GPUs nvidia-smi lists (without importing torch)."""
    ids = os.environ.get("REM_GPU_IDS")
    if ids:
        try:
            return [int(x) for x in ids.split(",") if x.strip()]
        except ValueError:
            raise SystemExit(
                f"with_gpu: REM_GPU_IDS={ids!r} must be GPU numbers, e.g. 0,1"
            ) from None
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return [i for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def choose(free: dict[int, list[int]], slots: int, k: int) -> list[tuple[int, int]] | None:
    """Which (gpu, slot) pairs to take, given each GPU's free slots; None if none fit.

    slots < k: that many slots of the GPU with the most free slots (lowest id on ties), so
    runs spread over the GPUs before they double up; slots = n * k: n entirely free GPUs.
    """
    if slots < k:
        fits = [g for g, s in free.items() if len(s) >= slots]
        if not fits:
            return None
        gpu = min(fits, key=lambda g: (-len(free[g]), g))
        return [(gpu, s) for s in sorted(free[gpu])[:slots]]
    whole = sorted(g for g, s in free.items() if len(s) == k)
    n = slots // k
    return [(g, s) for g in whole[:n] for s in range(k)] if len(whole) >= n else None


def _open_lock(lock_dir: Path, gpu: int, slot: int):
    return open(lock_dir / f"gpu{gpu}.slot{slot}.lock", "w")  # noqa: SIM115 - held until exit


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def free_slots(gpus: list[int], k: int, lock_dir: Path) -> dict[int, list[int]]:
    """Each GPU's slots no other job holds (probed by locking and releasing at once)."""
    free: dict[int, list[int]] = {}
    for gpu in gpus:
        free[gpu] = []
        for slot in range(k):
            with _open_lock(lock_dir, gpu, slot) as handle:
                if _try_lock(handle):
                    free[gpu].append(slot)  # closing releases it
    return free


def acquire(
    slots: int, k: int, gpus: list[int], lock_dir: Path, timeout_s: float, poll_s: float = 2.0
) -> tuple[list[tuple[int, int]], list]:
    """Take `slots` slots (see `choose`); polls until timeout_s (Snakemake's `gpu` resource
    normally guarantees they are free)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        picked = choose(free_slots(gpus, k, lock_dir), slots, k)
        if picked is not None:
            handles = []
            for gpu, slot in picked:
                handle = _open_lock(lock_dir, gpu, slot)
                if not _try_lock(handle):  # another job took it since the probe
                    handle.close()
                    break
                handles.append(handle)
            else:
                return picked, handles
            for handle in handles:
                handle.close()
        if time.monotonic() > deadline:
            what = f"{slots} slot(s)" if slots < k else f"{slots // k} whole GPU(s)"
            raise SystemExit(
                f"with_gpu: no {what} free on GPUs {gpus} ({k} slot(s) per GPU) after "
                f"{timeout_s:.0f} s; run Snakemake with `--resources gpu=<number of GPUs>` "
                "(profiles/local does) so it never starts more GPU jobs than there are slots"
            )
        time.sleep(poll_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    want = parser.add_mutually_exclusive_group(required=True)
    want.add_argument("--gpus", type=int, help="whole GPUs this job needs")
    want.add_argument("--slots", type=int, help="GPU slots this job needs (K per GPU)")
    parser.add_argument("--runs-per-gpu", type=int, default=1, help="slots per GPU, K (default 1)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for slots")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("missing the command to run after --")
    k = args.runs_per_gpu
    if k < 1:
        parser.error(f"--runs-per-gpu {k}: at least 1")
    slots = args.gpus * k if args.gpus is not None else args.slots
    if slots <= 0 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        os.execvp(command[0], command)
    if slots > k and slots % k:
        parser.error(
            f"--slots {slots} with {k} slots per GPU: a job takes fewer than {k} slots of one "
            f"GPU or whole GPUs (a multiple of {k})"
        )
    gpus = gpu_ids()
    if len(gpus) * k < slots:
        raise SystemExit(
            f"with_gpu: the job needs {slots} slot(s) ({k} per GPU) but this machine has "
            f"{len(gpus)} GPU(s) (nvidia-smi -L, or $REM_GPU_IDS); set resources.train.gpu: 0 "
            "in the workflow config for a CPU run"
        )
    lock_dir = Path(os.environ.get("REM_GPU_LOCK_DIR", ".snakemake/gpu-locks"))
    picked, handles = acquire(slots, k, gpus, lock_dir, args.timeout)
    devices = sorted({gpu for gpu, _ in picked})
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
    slot_text = ", ".join(f"gpu{g}.slot{s}" for g, s in picked)
    print(f"with_gpu: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} ({slot_text})", flush=True)
    # flock locks belong to the open file, so inheritable handles keep them held by the
    # command itself after exec (signals then reach it directly, no wrapper in between).
    for handle in handles:
        os.set_inheritable(handle.fileno(), True)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
