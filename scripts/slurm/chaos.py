#!/usr/bin/env python
"""Sweep chaos on the real one-node SLURM cluster: faults at random moments, nothing lost.

    sudo scripts/slurm/one_node.sh up
    python scripts/slurm/chaos.py --runs 8 --per-kind 2 --seed 0 --workdir /tmp/chaos

1. A sweep of `--runs` quick runs (variant rem, Breakout, seeds 0..N-1, CPU,
   `run.deterministic=true`, `--epochs` epochs, a checkpoint every epoch) packed 2 runs per
   SLURM job (`packing: {runs_per_gpu: 2, jobs: per-gpu}`), run by Snakemake with
   profiles/slurm.
2. While it runs, at seeded random moments (`--gap MIN MAX` seconds apart), `--per-kind`
   faults of each kind, in a seeded random order:
   - scancel: `scancel` a running job of the sweep (both runs of its pack stop);
   - SIGKILL trainer: SIGKILL one running `rem train` (the pid its run folder's .lock names);
   - restart slurmd: SIGKILL slurmd, wait, start it again (`one_node.sh up`);
   - kill Snakemake: SIGKILL Snakemake, then recover as docs/recovery.md says: stop the
     jobs it left (`scancel`), `snakemake --unlock` with the same options, the same command
     again.
   Snakemake retries failed pack jobs (`retries`); a Snakemake that ends with failed jobs is
   run again (the same command), as the docs say.
3. The same runs trained undisturbed (`rem train`, the same command, 2 at a time) are the
   reference: every run of the sweep must be complete, and its final checkpoint (every
   tensor: models, optimisers, collector, RNGs), replay, metrics (times excluded) and
   scores must equal the reference's (scripts/fault_injection.py's `compare`).

Prints a table: fault, times injected, runs affected, runs recovered, runs identical; and
the sweep's totals. Exits 1 unless every kind was injected, every run recovered and every run
is identical. `--json` writes every fault. tests/test_chaos_slurm.py runs a small one in CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ONE_NODE = ROOT / "scripts" / "slurm" / "one_node.sh"
SLURM_STATE = Path(os.environ.get("REM_SLURM_STATE", "/var/lib/rem-slurm"))
KINDS = ("scancel", "SIGKILL trainer", "restart slurmd", "kill Snakemake")
GAME, VARIANT, PACK = "Breakout", "rem", 2


def _fault_injection():
    path = ROOT / "scripts" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def overrides(epochs: int) -> list[str]:
    return [
        "run.deterministic=true",
        f"run.epochs={epochs}",
        "run.checkpoint_every=1",
        "evaluation.every=100",
        "evaluation.final_episodes=1",
        "env.test_max_raw_frames=400",
    ]


def write_config(workdir: Path, runs: int, epochs: int, retries: int) -> Path:
    """quick.yaml with `runs` Breakout seeds of rem, packed 2 per SLURM job."""
    cfg = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    cfg["variants"] = [
        {
            "name": VARIANT,
            "games": [GAME],
            "seeds": list(range(runs)),
            "overrides": overrides(epochs),
        }
    ]
    cfg.update(
        runs_dir="runs",
        logs_dir="logs",
        results_dir="results",
        retries=retries,
        packing={"runs_per_gpu": PACK, "jobs": "per-gpu"},
    )
    path = workdir / "chaos.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_dir(workdir: Path, seed: int) -> Path:
    return workdir / "runs" / VARIANT / GAME / str(seed)


def train_cmd(run: Path, seed: int, epochs: int) -> list[str]:
    rem = Path(sys.executable).with_name("rem")
    return [str(rem if rem.exists() else "rem"), "train", "--game", GAME, "--seed", str(seed),
            "--variant", VARIANT, "--run-dir", str(run), "--preset", "quick",
            *overrides(epochs)]  # fmt: skip


def make_reference(ref: Path, runs: int, epochs: int) -> Path:
    """The same runs trained undisturbed in `ref`, 2 at a time (`rem train` finishes what a
    previous call left and leaves a finished run as it is) -> `ref`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(seed: int) -> int:
        if (run_dir(ref, seed) / "COMPLETED").exists():
            return 0  # made by an earlier call (compare() checks it like any other)
        cmd = train_cmd(run_dir(ref, seed), seed, epochs)  # the sweep's own command
        return subprocess.run(cmd, capture_output=True, env=env).returncode

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(one, range(runs)))
    if any(codes):
        raise SystemExit(f"chaos: the undisturbed reference runs failed: exit codes {codes}")
    return ref


@dataclass
class Fault:
    kind: str
    at_s: float
    runs: list[int]  # seeds of the unfinished runs it stopped (or could have)
    detail: str


@dataclass
class Sweep:
    """Snakemake on the sweep, restarted as the docs say, plus what is needed to hurt it."""

    workdir: Path
    config: Path
    runs: int
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    def snakemake(self, *extra: str) -> list[str]:
        targets = [f"runs/{VARIANT}/{GAME}/{s}/COMPLETED" for s in range(self.runs)]
        return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                "--directory", str(self.workdir), "--profile", str(ROOT / "profiles" / "slurm"),
                "--configfile", str(self.config),
                "--slurm-init-seconds-before-status-checks", "5", *extra, *targets]  # fmt: skip

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"\n== chaos: snakemake start {self.starts}\n")
            self.proc = subprocess.Popen(
                self.snakemake(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
            )  # fmt: skip

    def unlock(self) -> None:
        subprocess.run(self.snakemake("--unlock"), cwd=self.workdir, capture_output=True)

    def complete(self) -> list[int]:
        return [s for s in range(self.runs) if (run_dir(self.workdir, s) / "COMPLETED").exists()]

    def trainers(self) -> dict[int, int]:
        """seed -> pid of the live `rem train` holding its run folder (from its .lock)."""
        out = {}
        for seed in range(self.runs):
            run = run_dir(self.workdir, seed)
            try:
                text = (run / ".lock").read_text()
            except OSError:
                continue
            if not text.startswith("pid ") or (run / "COMPLETED").exists():
                continue
            pid = int(text.split()[1])
            if _alive(pid):
                out[seed] = pid
        return out

    def jobs(self) -> dict[str, list[int]]:
        """Running SLURM job id -> seeds of its live trainers."""
        ids = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True
        ).stdout.split()
        jobs: dict[str, list[int]] = {job: [] for job in ids}
        for seed, pid in self.trainers().items():
            job = _slurm_job_of(pid)
            if job in jobs:
                jobs[job].append(seed)
        return jobs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _slurm_job_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"SLURM_JOB_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


def _active_jobs() -> list[str]:
    """Jobs pending or running (squeue also lists finished ones for MinJobAge seconds)."""
    cmd = ["squeue", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING", "-o", "%i"]
    return subprocess.run(cmd, capture_output=True, text=True).stdout.split()


def _wait_no_jobs(timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while _active_jobs():
        if time.monotonic() > deadline:
            raise SystemExit("chaos: cancelled jobs did not leave the queue")
        time.sleep(1)


def inject(kind: str, sweep: Sweep, rng: random.Random, t: float) -> Fault | None:
    """Inject one fault of `kind` now -> what it hit, or None when nothing runs to hit."""
    if kind == "scancel":
        jobs = {j: seeds for j, seeds in sweep.jobs().items() if seeds}
        if not jobs:
            return None
        job = rng.choice(sorted(jobs))
        subprocess.run(["scancel", job], check=True)
        return Fault(kind, t, sorted(jobs[job]), f"job {job}")
    if kind == "SIGKILL trainer":
        trainers = sweep.trainers()
        if not trainers:
            return None
        seed = rng.choice(sorted(trainers))
        os.kill(trainers[seed], signal.SIGKILL)
        return Fault(kind, t, [seed], f"pid {trainers[seed]}")
    if kind == "restart slurmd":
        seeds = sorted(sweep.trainers())
        if not seeds:
            return None
        pid = int((SLURM_STATE / "slurmd.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        time.sleep(rng.uniform(2, 6))
        subprocess.run([str(ONE_NODE), "up"], check=True, capture_output=True, timeout=300)
        return Fault(kind, t, seeds, f"slurmd pid {pid} killed and restarted")
    seeds = sorted(sweep.trainers())  # kill Snakemake
    if not seeds or sweep.proc is None:
        return None
    os.kill(sweep.proc.pid, signal.SIGKILL)
    sweep.proc.wait()
    # docs/recovery.md, "After Snakemake itself dies": stop the jobs it left (or let them
    # finish), remove its stale lock, run the same command again.
    ids = _active_jobs()
    if ids:
        subprocess.run(["scancel", *ids], check=False)
    _wait_no_jobs()
    sweep.unlock()
    sweep.start()
    return Fault(kind, t, seeds, f"Snakemake killed; its {len(ids)} job(s) cancelled; rerun")


def drive(sweep: Sweep, plan: list[str], rng: random.Random, gap: tuple[float, float],
          timeout: float) -> list[Fault]:  # fmt: skip
    """Run the sweep to the end, injecting the faults of `plan` in order."""
    faults: list[Fault] = []
    start = time.monotonic()
    next_at = start + rng.uniform(*gap)
    sweep.start()
    while True:
        now = time.monotonic()
        if now - start > timeout:
            sweep.proc.kill()
            raise SystemExit(f"chaos: the sweep did not finish in {timeout:.0f} s")
        code = sweep.proc.poll()
        if code is not None:
            sweep.exits.append(code)
            if len(sweep.complete()) == sweep.runs:
                return faults
            if sweep.starts > 4 * len(plan) + 4:
                raise SystemExit(f"chaos: Snakemake failed {sweep.starts} times; see {sweep.log}")
            sweep.start()  # failed jobs: the same command again
        if plan and now >= next_at:
            fault = inject(plan[0], sweep, rng, now - start)
            if fault is not None:
                print(f"chaos: {fault.at_s:6.1f} s {fault.kind}: {fault.detail}, runs {fault.runs}",
                      flush=True)  # fmt: skip
                faults.append(fault)
                plan.pop(0)
                next_at = time.monotonic() + rng.uniform(*gap)
        time.sleep(0.5)


def table(faults: list[Fault], complete: set[int], identical: set[int]) -> list[dict]:
    rows = []
    for kind in KINDS:
        hits = [f for f in faults if f.kind == kind]
        affected = sorted({s for f in hits for s in f.runs})
        rows.append(
            {
                "fault": kind,
                "injected": len(hits),
                "runs affected": len(affected),
                "runs recovered": len([s for s in affected if s in complete]),
                "runs identical": len([s for s in affected if s in identical]),
            }
        )
    return rows


def print_table(rows: list[dict], runs: int, complete: set[int], identical: set[int]) -> None:
    print(f"{'fault':<16} {'injected':>8} {'affected':>9} {'recovered':>10} {'identical':>10}")
    for r in rows:
        print(f"{r['fault']:<16} {r['injected']:>8} {r['runs affected']:>9} "
              f"{r['runs recovered']:>10} {r['runs identical']:>10}")  # fmt: skip
    print(f"{'all runs':<16} {'':>8} {runs:>9} {len(complete):>10} {len(identical):>10}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8, help="quick runs in the sweep (default 8)")
    p.add_argument("--epochs", type=int, default=6, help="epochs per run (default 6)")
    p.add_argument("--per-kind", type=int, default=2, help="faults of each kind (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the moments and targets")
    p.add_argument("--gap", type=float, nargs=2, default=(8.0, 30.0), metavar=("MIN", "MAX"),
                   help="seconds between faults, drawn uniformly (default 8 30)")  # fmt: skip
    p.add_argument("--retries", type=int, default=3, help="the workflow's retries (default 3)")
    p.add_argument("--workdir", type=Path, required=True, help="a new or empty folder")
    p.add_argument(
        "--reference",
        type=Path,
        help="folder of the undisturbed runs (default WORKDIR/reference); one made by an "
        "earlier call with the same --runs and --epochs is reused",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds for the sweep")
    p.add_argument("--json", type=Path, help="write the faults and the table here")
    args = p.parse_args(argv)
    if args.runs < PACK or args.per_kind < 1:
        p.error(f"--runs must be >= {PACK} and --per-kind >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (
        shutil.which("squeue") is None
        or subprocess.run([str(ONE_NODE), "status"], capture_output=True).returncode
    ):
        print(f"chaos: no usable SLURM cluster; bring it up: sudo {ONE_NODE} up", file=sys.stderr)
        return 2  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    if any((args.workdir / "runs").glob("*")):
        print(f"chaos: {args.workdir} already holds runs; give a new folder", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    ref = make_reference(args.reference or args.workdir / "reference", args.runs, args.epochs)
    print(f"chaos: undisturbed reference of {args.runs} runs in {time.monotonic() - t0:.0f} s",
          flush=True)  # fmt: skip
    rng = random.Random(args.seed)
    plan = [k for k in KINDS for _ in range(args.per_kind)]
    rng.shuffle(plan)
    config = write_config(args.workdir, args.runs, args.epochs, args.retries)
    sweep = Sweep(args.workdir, config, args.runs, args.workdir / "snakemake.log")
    t0 = time.monotonic()
    faults = drive(sweep, plan, rng, tuple(args.gap), args.timeout)
    print(f"chaos: sweep done in {time.monotonic() - t0:.0f} s, Snakemake started "
          f"{sweep.starts} times (exits {sweep.exits})", flush=True)  # fmt: skip
    compare = _fault_injection().compare
    complete = set(sweep.complete())
    differences = {s: compare(run_dir(args.workdir, s), run_dir(ref, s)) for s in sorted(complete)}
    identical = {s for s, diff in differences.items() if not diff}
    rows = table(faults, complete, identical)
    print_table(rows, args.runs, complete, identical)
    for seed, diff in differences.items():
        if diff:
            print(f"chaos: run {seed} differs: {diff[:5]}")
    if args.json:
        args.json.write_text(json.dumps(
            {"faults": [asdict(f) for f in faults], "table": rows, "runs": args.runs,
             "complete": sorted(complete), "identical": sorted(identical),
             "snakemake_starts": sweep.starts, "packs": packs(args.workdir, args.runs)},
            indent=1))  # fmt: skip
    ok = all(r["injected"] == args.per_kind for r in rows) and len(identical) == args.runs
    return 0 if ok else 1


def packs(workdir: Path, runs: int) -> dict[int, list[str]]:
    """seed -> the SLURM jobs that trained it (from its attempts log)."""
    out = {}
    for seed in range(runs):
        log = workdir / "logs" / "train" / VARIANT / GAME / f"{seed}.attempts.log"
        text = log.read_text() if log.exists() else ""
        out[seed] = [line.split("(SLURM job ")[1].split(")")[0] for line in text.splitlines()
                     if line.startswith("== job start") and "(SLURM job " in line]  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
