"""A full disk loses nothing: a quick run on a small tmpfs made for the test, whose file system
refuses one write of each kind the trainer does (rem/utils/write_faults.py), process after
process, and then resumes to the end.

Each refusal is real: the file system is filled (all free space but about half of what the
write needs, so the write starts and fails part-way with ENOSPC), remounted read-only
(EROFS) or stripped of write permission (EACCES; the trainer runs without CAP_DAC_OVERRIDE,
as a normal user would). Every time the run stops with exit 1 and one line naming the file
and, for a full disk, the space the write needed; the committed checkpoint verifies
(sizes, SHA-256, replay); no uncommitted checkpoint is left holding space. After the space is
freed (or the mount or permission restored) the same command resumes, and the finished run
equals the uninterrupted reference (CPU, run.deterministic=true). Needs root and mount
permission; skips with a message elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rem.training.checkpoint import verify_checkpoint
from rem.utils.write_faults import FILLER, write_kind

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]  # 10 trainer processes

SIZE = "96m"  # a finished quick run folder takes about 40 MB
NO_DAC = "-dac_override,-dac_read_search"  # root without them gets EACCES like any user
MESSAGES = {
    "full": "No space left on device",
    "readonly": "Read-only file system",
    "denied": "Permission denied",
}
# (fault spec for one process, the kind of write refused, how) in run order; the run
# checkpoints every epoch (as the fault-injection campaign: the result does not change).
CHAIN = [
    ("media:2", "media", "full"),  # epoch 2's evaluation media (checkpoint 1 committed)
    ("replay:2", "replay", "full"),  # inside the replay save of checkpoint 2
    ("state:2", "state", "full"),  # checkpoint 2's state.pt
    ("commit:2", "commit", "full"),  # LATEST.json of checkpoint 2 (the commit point)
    ("metrics", "metrics", "full"),  # the first metrics line that needs a new page
    ("report", "report", "full"),  # the manifest's new session, right after the resume
    (None, None, "readonly"),  # the file system remounted read-only before the resume
    ("report=denied", "report", "denied"),  # write permission lost
    ("scores", "scores", "full"),  # scores.json of the final evaluation
]


def _fault_injection():
    path = Path(__file__).resolve().parents[1] / "scripts" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def small_fs():
    """A size-limited tmpfs -> its mount point; skips where mounting is not permitted."""
    if shutil.which("mount") is None or shutil.which("setpriv") is None:
        pytest.skip("the full-disk tests need mount and setpriv (util-linux)")
    mount = Path(tempfile.mkdtemp(prefix="rem-small-fs-"))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {' '.join(proc.stderr.split())}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)
    mount.rmdir()


def _train(faults, run: Path, spec: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REM_TEST_")}
    env.pop("REM_FAULT_TRACE", None)
    if spec:
        env["REM_TEST_WRITE_FAULT"] = spec
    cmd = ["setpriv", "--bounding-set", NO_DAC, "--inh-caps", NO_DAC, *faults.train_cmd(run)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def _restore(mount: Path, how: str) -> None:
    """Undo a refusal as its user would: free the space, remount, give permission back."""
    if how == "full":
        (mount / FILLER).unlink()
    elif how == "readonly":
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
    else:
        for folder, _dirs, files in os.walk(mount):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)


def _refused_path(line: str, run: Path) -> Path:
    assert line.startswith("rem train: error: cannot write "), line
    path = Path(line.removeprefix("rem train: error: cannot write ").split(":")[0])
    assert path.is_relative_to(run), line
    return path


def test_refused_writes_lose_nothing_and_resume_identical(small_fs, quick_run_dir):
    faults = _fault_injection()
    run = small_fs / "runs" / "rem" / "Breakout" / "3"  # the workflow's layout
    committed = []
    for spec, kind, how in CHAIN:
        if spec is None:  # a writable fd (the trainer's own .lock) blocks a remount mid-run
            subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
        proc = _train(faults, run, spec)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1, (spec, proc.stderr[-3000:])
        line = lines[0]
        refused = _refused_path(line, run)
        assert write_kind(refused) == kind if kind else refused.name == ".lock", (spec, line)
        assert MESSAGES[how] in line and "run the same command again" in line, (spec, line)
        if how == "full":
            assert "the write needed" in line and "free there" in line, (spec, line)
            assert not (run / "checkpoints" / ".tmp").exists(), spec  # its space given back
        _restore(small_fs, how)
        if (run / "checkpoints" / "LATEST.json").exists():
            committed.append(verify_checkpoint(run / "checkpoints")["epoch"])
            assert f"checkpoint of epoch {committed[-1]}" in line, (spec, line)
    assert committed[:4] == [1, 1, 1, 1] and committed[-1] == 6, committed
    proc = _train(faults, run, None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert faults.compare(run, quick_run_dir) == []  # the uninterrupted run (conftest)
