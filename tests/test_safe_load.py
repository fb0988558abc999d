"""A shared run folder never runs code: every state file is read with
`torch.load(weights_only=True)`.

A finished quick run whose latest state.pt is replaced by a crafted pickle (a payload that
creates a marker file), with LATEST.json's size and SHA-256 updated to match, is refused by
every reader (`rem evaluate --checkpoint`, `rem play`, a resuming `rem train`, `rem wm-eval`,
the diagnostics) with one line and exit 2, and the payload never ran. A format-1 checkpoint
(numpy RNG state as an ndarray, as an older rem wrote it) is refused the same way, naming
`rem convert-checkpoint`, which converts it only with --i-trust-this-folder; the converted run
evaluates again. A static check: every torch.load in rem/, workflow/, benchmarks/ and scripts/
passes weights_only=True, except the converter's one deliberate load.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
GAME, SEED = "Breakout", 3
DETERMINISTIC = "run.deterministic=true"  # as the quick run of conftest.quick_run_dir
REFUSED = "was not loaded"  # the refusal line of rem.training.checkpoint.load_state_file


class Payload:
    """Unpickling this runs a shell command (what a crafted state.pt would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _rewrite_state(run: Path, state: dict) -> Path:
    """Replace the latest state.pt of `run` and update LATEST.json's size and SHA-256 to
    match, as someone passing the folder on could -> the state file."""
    latest_path = run / "checkpoints" / "LATEST.json"
    latest = json.loads(latest_path.read_text())
    path = run / "checkpoints" / latest["name"] / "state.pt"
    path.unlink()  # the file may be hard-linked into a snapshot: never write through it
    torch.save(state, path)
    data = path.read_bytes()
    latest["files"]["state.pt"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    latest_path.write_text(json.dumps(latest))
    return path


def _rem(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _diagnostic(name: str) -> str:
    """The diagnostics' module (rem.diagnostics, or benchmarks before they moved there)."""
    moved = REPO / "rem" / "diagnostics" / f"{name}.py"
    return f"rem.diagnostics.{name}" if moved.is_file() else f"benchmarks.{name}"


def _readers(run: Path) -> dict[str, list[str]]:
    train = ["rem", "train", "--game", GAME, "--seed", str(SEED), "--variant", "rem"]
    return {
        "evaluate": ["rem", "evaluate", "--checkpoint", str(run), "--episodes", "1"],
        "play": ["rem", "play", str(run), "--max-ticks", "1"],
        "train (resume)": [*train, "--run-dir", str(run), "--preset", "quick", DETERMINISTIC],
        "wm-eval": ["rem", "wm-eval", str(run), "--steps", "16"],
        "wm_fit": [_diagnostic("wm_fit"), str(run), "--updates", "1"],
        "tokenizer_drift": [_diagnostic("tokenizer_drift"), str(run), "--frames", "8"],
    }


@pytest.fixture
def crafted_run(quick_run_dir, tmp_path) -> tuple[Path, Path]:
    """A copy of the quick run, unfinished (so `rem train` resumes it), whose latest state.pt
    is a crafted pickle with valid hashes -> (run folder, the marker its payload creates)."""
    run = tmp_path / "shared-run"
    shutil.copytree(quick_run_dir, run)
    for name in ("COMPLETED", "scores.json"):
        (run / name).unlink(missing_ok=True)
    marker = tmp_path / "payload-ran"
    epoch = json.loads((run / "checkpoints" / "LATEST.json").read_text())["epoch"]
    _rewrite_state(run, {"format": 1, "epoch": epoch, "agent": Payload(f"touch {marker}")})
    return run, marker


@pytest.mark.slow
@pytest.mark.timeout(1800)  # six readers, each a new process
def test_crafted_pickle_is_refused_and_never_runs(crafted_run):
    run, marker = crafted_run
    problems = []
    for reader, args in _readers(run).items():
        proc = _rem(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        if marker.exists():
            problems.append(f"{reader}: the crafted pickle's payload ran (exit {proc.returncode})")
            marker.unlink()
        elif proc.returncode != 2 or len(lines) != 1 or REFUSED not in lines[0]:
            problems.append(f"{reader}: exit {proc.returncode}, stderr {proc.stderr[-1500:]!r}")
        elif "posix.system" not in lines[0] or "rem convert-checkpoint" not in lines[0]:
            problems.append(f"{reader}: the line names neither the global nor the fix: {lines[0]}")
    assert not problems, "\n".join(problems)


def _as_format_1(state: dict) -> dict:
    """The state as an older rem wrote it: numpy's RNG state in numpy's own tuple form."""
    import numpy as np

    numpy_state = state["rng"]["numpy"]
    keys = np.frombuffer(numpy_state["keys"], dtype="<u4").astype(np.uint32)
    legacy = ("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"], 0.0)
    return {**state, "format": 1, "rng": {**state["rng"], "numpy": legacy}}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four commands, each a new process
def test_old_checkpoint_names_the_conversion_and_converts_when_trusted(quick_run_dir, tmp_path):
    from rem.training.checkpoint import load_checkpoint

    run = tmp_path / "old-run"
    shutil.copytree(quick_run_dir, run)
    original, _ = load_checkpoint(run / "checkpoints", replay=False)
    _rewrite_state(run, _as_format_1(original))
    evaluate = ["rem", "evaluate", "--checkpoint", str(run), "--episodes", "1"]
    proc = _rem(*evaluate)
    assert proc.returncode == 2 and REFUSED in proc.stderr, proc.stderr[-2000:]
    assert f"rem convert-checkpoint {run} --i-trust-this-folder" in proc.stderr

    proc = _rem("rem", "convert-checkpoint", str(run))  # no confirmation: nothing read
    assert proc.returncode == 2 and "--i-trust-this-folder" in proc.stderr, proc.stderr
    proc = _rem("rem", "convert-checkpoint", str(run), "--i-trust-this-folder")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "converted" in proc.stdout and "already in the safe format" in proc.stdout

    converted, _ = load_checkpoint(run / "checkpoints")  # hashes, replay, safe load
    assert converted["rng"]["numpy"] == original["rng"]["numpy"]
    for key, value in original["agent"].items():
        assert torch.equal(converted["agent"][key], value), key
    assert not list(run.glob("checkpoints/*/state-format1.pt"))
    proc = _rem(*evaluate)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_state_file_of_a_run_loads_safely(quick_run_dir):
    for path in sorted(quick_run_dir.glob("checkpoints/epoch_*/state.pt")):
        state = torch.load(path, weights_only=True)  # raises if anything needs code
        assert isinstance(state["rng"]["numpy"]["keys"], bytes)


def _torch_loads(path: Path) -> list[tuple[int, bool]]:
    """(line, passes weights_only=True) of each torch.load call in a Python file."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            safe = any(
                k.arg == "weights_only"
                and isinstance(k.value, ast.Constant)
                and k.value.value is True
                for k in node.keywords
            )
            calls.append((node.lineno, safe))
    return calls


def test_every_torch_load_is_weights_only():
    unsafe, found = [], 0
    for folder in ("rem", "workflow", "benchmarks", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for line, safe in _torch_loads(path):
                found += 1
                if not safe:
                    unsafe.append(f"{path.relative_to(REPO)}:{line}")
    assert found >= 5  # the check sees the loads (state files, media, weights)
    # the converter's one deliberate unsafe load, reached only after --i-trust-this-folder
    assert [u.split(":")[0] for u in unsafe] == ["rem/training/convert.py"], unsafe
