#!/usr/bin/env python
"""Fault injection: kill a quick `rem train` run at many seeded random moments, resume it,
and check that it ends identical to the uninterrupted run.

    python scripts/fault_injection.py --kills 24 --seed 0            # the campaign
    python scripts/fault_injection.py --kill collect:3@50 --kill 'replay_write:4+evaluate:6@40'

1. An uninterrupted reference run (quick preset, `run.deterministic=true`,
   `run.checkpoint_every=1`, CPU) records every moment a kill can target
   (`REM_FAULT_TRACE`, see rem/utils/faults.py): each action of collection and of the
   evaluations, each episode file of each replay save, each step of each checkpoint write and
   of its commit, the final evaluation and the run's last writes.
2. `--kills N` moments are drawn with `--seed`, spread evenly over the categories (collection,
   evaluation, final evaluation, replay save, checkpoint write, checkpoint commit, epoch
   boundary, finish) and uniformly within each.
3. Each attempt trains a fresh run folder with `REM_TEST_KILL_AT` set to its moment (the
   process must die there by SIGKILL), then runs the same command again until it finishes.
   With `--chain K` an attempt chains K moments in run order: each resumed process is killed
   at the next one (a resumed process redoes whole epochs, so a moment `POINT:EPOCH@N` after
   its checkpoint is the same moment as in the reference). Cheaper: one run, K restarts.
4. The finished run must equal the reference: every tensor and value of the final checkpoint
   (models, optimisers, collector, RNGs), every episode of its replay, every metrics line
   (times excluded), scores.json (eval_seconds excluded), COMPLETED and a completed manifest.

Prints per category: kill points tried, killed there, resumed to the end, identical; exits 1
if any attempt fails. `--json` writes every attempt. tests/test_resume.py runs a fixed chain
of this in CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

GAME, RUN_SEED, VARIANT = "Breakout", 3, "rem"
OVERRIDES = ("run.deterministic=true", "run.checkpoint_every=1")
CATEGORIES = (
    "collection",
    "evaluation",
    "final evaluation",
    "replay save",
    "checkpoint write",
    "checkpoint commit",
    "epoch boundary",
    "finish",
)


def rem_exe() -> str:
    beside = Path(sys.executable).with_name("rem")
    return str(beside) if beside.exists() else (shutil.which("rem") or "rem")


def train_cmd(run_dir: Path, game: str = GAME, seed: int = RUN_SEED) -> list[str]:
    return [
        rem_exe(), "train", "--game", game, "--seed", str(seed), "--variant", VARIANT,
        "--run-dir", str(run_dir), "--preset", "quick", *OVERRIDES,
    ]  # fmt: skip


def run_train(
    run_dir: Path,
    *,
    kill: str | None = None,
    trace: Path | None = None,
    game: str = GAME,
    seed: int = RUN_SEED,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REM_TEST_KILL_AT", "REM_FAULT_TRACE")}
    env.setdefault("OMP_NUM_THREADS", "1")
    if kill:
        env["REM_TEST_KILL_AT"] = kill
    if trace:
        env["REM_FAULT_TRACE"] = str(trace)
    return subprocess.run(
        train_cmd(run_dir, game, seed), capture_output=True, text=True, env=env, timeout=timeout
    )


# ---------------------------------------------------------------------- moments


@dataclass(frozen=True)
class Moment:
    point: str
    epoch: int | None
    n: int  # the n-th hit of `point` in `epoch`
    category: str
    index: int  # position in the reference run's trace

    @property
    def spec(self) -> str:
        return self.point + ("" if self.epoch is None else f":{self.epoch}") + f"@{self.n}"


def category(point: str, epoch: int | None, epochs: int) -> str:
    if point == "collect":
        return "collection"
    if point == "evaluate":  # no periodic evaluation runs in the last epoch
        return "final evaluation" if epoch == epochs else "evaluation"
    if point.startswith("replay_"):
        return "replay save"
    if point in ("checkpoint_start", "checkpoint_mid", "checkpoint_state", "checkpoint_verified"):
        return "checkpoint write"
    if point in ("checkpoint_renamed", "checkpoint_committed", "after_checkpoint"):
        return "checkpoint commit"
    if point.startswith("epoch_"):
        return "epoch boundary"
    if point.startswith("finish_"):
        return "finish"
    if point == "checkpoint_loaded":
        return "resume"
    raise ValueError(f"unknown fault point {point!r} in the trace")


def read_trace(path: Path, epochs: int) -> list[Moment]:
    moments = []
    for index, line in enumerate(Path(path).read_text().splitlines()):
        point, epoch, n = line.split("\t")
        e = int(epoch) if epoch else None
        moments.append(Moment(point, e, int(n), category(point, e, epochs), index))
    return moments


def draw(moments: list[Moment], kills: int, seed: int) -> list[Moment]:
    """`kills` distinct moments, round-robin over the categories, uniform within each."""
    rng = np.random.default_rng(seed)
    pools = {c: [m for m in moments if m.category == c] for c in CATEGORIES}
    for pool in pools.values():
        rng.shuffle(pool)
    chosen: list[Moment] = []
    while len(chosen) < kills and any(pools.values()):
        for c in CATEGORIES:
            if pools[c] and len(chosen) < kills:
                chosen.append(pools[c].pop())
    return chosen


# ---------------------------------------------------------------------- comparison


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    import torch

    if len(out) >= 5:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            out.append(f"{path}: keys differ {sorted(set(a) ^ set(b), key=str)}")
            return
        for k in a:
            _diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
        if not same:
            out.append(f"{path}: tensors differ")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (np.asarray(a).dtype == np.asarray(b).dtype and np.array_equal(a, b)):
            out.append(f"{path}: arrays differ")
    elif a != b and not (a != a and b != b):  # NaN == NaN here
        out.append(f"{path}: {str(a)[:60]} vs {str(b)[:60]}")


def _untimed(records: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if not k.startswith("time/") and not k.endswith("seconds")}
        for r in records
    ]


def compare(run: Path, reference: Path) -> list[str]:
    """Differences between a finished run and the reference (empty: identical)."""
    from rem.data.replay import Replay
    from rem.runs.files import read_metrics
    from rem.training.checkpoint import load_checkpoint

    out: list[str] = []
    if not (run / "COMPLETED").is_file():
        return ["no COMPLETED"]
    if json.loads((run / "manifest.json").read_text()).get("status") != "completed":
        out.append("manifest status is not completed")
    (ours, ours_dir), (ref, ref_dir) = (
        load_checkpoint(p / "checkpoints") for p in (run, reference)
    )
    ours.pop("identity"), ref.pop("identity")  # the config (run.checkpoint_every may differ)
    _diff(ours, ref, "checkpoint", out)
    a, b = Replay.load(ours_dir / "replay"), Replay.load(ref_dir / "replay")
    if a.ids() != b.ids():
        out.append(f"replay ids {a.ids()} vs {b.ids()}")
    else:
        for i in a.ids():
            for name in ("observations", "actions", "rewards", "ends"):
                if not np.array_equal(getattr(a[i], name), getattr(b[i], name)):
                    out.append(f"replay episode {i} {name} differ")
    _diff(
        _untimed(read_metrics(run / "metrics.jsonl")),
        _untimed(read_metrics(reference / "metrics.jsonl")),
        "metrics",
        out,
    )
    scores = [json.loads((p / "scores.json").read_text()) for p in (run, reference)]
    for s in scores:
        s.pop("eval_seconds", None)
    _diff(scores[0], scores[1], "scores", out)
    return out


# ---------------------------------------------------------------------- attempts


@dataclass
class Attempt:
    chain: list[str]
    categories: list[str]
    killed: list[bool] = field(default_factory=list)  # died by SIGKILL at each kill
    resumed: bool = False  # the run then finished (rc 0, COMPLETED)
    identical: bool = False
    differences: list[str] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(self.killed) and self.resumed and self.identical


def attempt(
    chain: list[str],
    reference: Path,
    workdir: Path,
    categories: list[str] | None = None,
    *,
    game: str = GAME,
    seed: int = RUN_SEED,
    keep: bool = False,
) -> Attempt:
    """Kill a fresh run at each moment of `chain` in turn, then finish it and compare."""
    result = Attempt(list(chain), categories or ["-"] * len(chain))
    start = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="attempt-", dir=workdir)) / "run"
    for spec in chain:
        proc = run_train(run_dir, kill=spec, game=game, seed=seed)
        result.killed.append(proc.returncode == -9)
        if proc.returncode != -9:
            result.log += (
                f"[{spec}] rc {proc.returncode}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
            )
    proc = run_train(run_dir, game=game, seed=seed)
    result.resumed = proc.returncode == 0 and (run_dir / "COMPLETED").is_file()
    result.log += f"[resume] rc {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    if result.resumed:
        result.differences = compare(run_dir, reference)
        result.identical = not result.differences
    result.seconds = time.perf_counter() - start
    if result.ok and not keep:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    return result


def make_reference(workdir: Path, game: str = GAME, seed: int = RUN_SEED) -> tuple[Path, Path]:
    """The uninterrupted run and its trace of moments."""
    ref, trace = workdir / "reference", workdir / "reference.trace"
    trace.unlink(missing_ok=True)
    proc = run_train(ref, trace=trace, game=game, seed=seed)
    if proc.returncode != 0:
        raise SystemExit(f"the reference run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return ref, trace


def chains(moments: list[Moment], size: int, seed: int) -> list[list[Moment]]:
    """Random groups of `size` moments, each in run order (a chain of kills). At most one
    `finish` moment per group: after a kill there, the next process finds the run finished
    and only writes COMPLETED, so no later moment of the run is reached again."""
    rng = np.random.default_rng(seed + 1)
    last = [m for m in moments if m.category == "finish"]
    rest = [m for m in moments if m.category != "finish"]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    groups: list[list[Moment]] = [[] for _ in range(max(1, -(-len(moments) // size)))]
    for i, m in enumerate(last):
        groups[i % len(groups)].append(m)
    for m in rest:
        min(groups, key=len).append(m)
    return [sorted(g, key=lambda m: m.index) for g in groups if g]


def summary(attempts: list[Attempt]) -> list[dict[str, Any]]:
    """Per kill, by category: tried; killed there (SIGKILL at that moment); resumed (the run
    went on from it to the end: every later kill hit, the last process finished); identical
    (the finished run equals the reference)."""
    kills = [
        (c, killed, all(a.killed[i + 1 :]) and a.resumed, a.identical)
        for a in attempts
        for i, (c, killed) in enumerate(zip(a.categories, a.killed))
    ]
    rows = []
    for c in [*CATEGORIES, "-", "all"]:
        group = [k for k in kills if c in ("all", k[0])]
        if group:
            rows.append(
                {
                    "category": c,
                    "tried": len(group),
                    "killed": sum(k[1] for k in group),
                    "resumed": sum(k[1] and k[2] for k in group),
                    "identical": sum(k[1] and k[2] and k[3] for k in group),
                }
            )
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=24, help="random kill moments (default 24)")
    p.add_argument("--chain", type=int, default=1, help="kills per attempt (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument(
        "--kill",
        action="append",
        default=[],
        metavar="SPEC[+SPEC...]",
        help="an explicit attempt instead of random ones: POINT[:EPOCH][@N], '+' chains kills",
    )
    p.add_argument("--game", default=GAME)
    p.add_argument("--run-seed", type=int, default=RUN_SEED)
    p.add_argument("--jobs", type=int, default=1, help="attempts in parallel (default 1)")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    p.add_argument("--keep", action="store_true", help="keep the run folders of passed attempts")
    p.add_argument("--json", type=Path, default=None, help="write every attempt here")
    return p.parse_args(argv)


def quick_epochs() -> int:
    """Epochs of the runs under test (the quick preset with OVERRIDES)."""
    from rem.config import load_config

    return load_config("quick", VARIANT, list(OVERRIDES)).run.epochs


def plan_attempts(args: argparse.Namespace, moments: list[Moment]) -> list[tuple[list, list]]:
    """-> (kill specs, their categories) per attempt: the `--kill` ones as given, else
    `--kills` moments drawn with `--seed` and grouped into chains of `--chain`."""
    if args.kill:
        return [(spec.split("+"), ["-"] * len(spec.split("+"))) for spec in args.kill]
    drawn = draw(moments, args.kills, args.seed)
    return [
        ([m.spec for m in g], [m.category for m in g])
        for g in chains(drawn, max(1, args.chain), args.seed)
    ]


def run_attempt(
    plan: tuple[list[str], list[str]], args: argparse.Namespace, reference: Path, workdir: Path
) -> Attempt:
    """One planned attempt, printed as it ends (with its log when it failed)."""
    chain, cats = plan
    a = attempt(chain, reference, workdir, cats, game=args.game, seed=args.run_seed, keep=args.keep)
    a.log = a.log if not a.ok else ""  # passed attempts keep the --json small
    state = "ok" if a.ok else "FAILED"
    print(f"  {'+'.join(chain)}  [{', '.join(cats)}]  {state} ({a.seconds:.0f} s)", flush=True)
    if not a.ok:
        print("    killed", a.killed, "resumed", a.resumed, "differences", a.differences)
        print("    " + a.log[-1500:].replace("\n", "\n    "))
    return a


def print_summary(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'category':<18} {'tried':>5} {'killed':>6} {'resumed':>7} {'identical':>9}")
    for r in rows:
        print(
            f"{r['category']:<18} {r['tried']:>5} {r['killed']:>6} {r['resumed']:>7} "
            f"{r['identical']:>9}"
        )


def write_json(
    path: Path,
    args: argparse.Namespace,
    counts: Counter,
    rows: list[dict[str, Any]],
    attempts: list[Attempt],
) -> None:
    path.write_text(
        json.dumps(
            {
                "game": args.game,
                "run_seed": args.run_seed,
                "seed": args.seed,
                "chain": args.chain,
                "overrides": list(OVERRIDES),
                "moments": dict(counts),
                "summary": rows,
                "attempts": [asdict(a) for a in attempts],
            },
            indent=2,
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rem-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reference, trace = make_reference(workdir, args.game, args.run_seed)
    moments = read_trace(trace, quick_epochs())
    ref_seconds = time.perf_counter() - t0
    counts = Counter(m.category for m in moments)
    print(f"reference run: {ref_seconds:.0f} s, {len(moments)} kill moments " + str(dict(counts)))
    plans = plan_attempts(args, moments)
    one = functools.partial(run_attempt, args=args, reference=reference, workdir=workdir)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        attempts = list(pool.map(one, plans))
    rows = summary(attempts)
    print_summary(rows)
    print(f"total {time.perf_counter() - t0:.0f} s; workdir {workdir}")
    if args.json:
        write_json(args.json, args, counts, rows, attempts)
    return 0 if all(a.ok for a in attempts) else 1


if __name__ == "__main__":
    sys.exit(main())
