"""The learning diagnostics on a real quick run: `rem diagnose tokenizer-drift` (the two
committed checkpoints' tokenizers on the same replay frames) and `rem diagnose wm-fit` (a fresh
world model on the frozen tokenizer's tokens, and on the synthetic copy task)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rem", "diagnose", name.replace("_", "-"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_drift_between_committed_checkpoints(quick_run_dir, tmp_path):
    out = tmp_path / "drift.json"
    proc = bench("tokenizer_drift", str(quick_run_dir), "--frames", "64", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["from_epoch"] < row["to_epoch"]
    # the tokenizer trains every epoch of the quick preset, so some ids move, but not all
    assert 0.0 < row["tokens_changed"] < 1.0
    assert 1 <= row["codes_used"] <= 512

    latest = json.loads((quick_run_dir / "checkpoints" / "LATEST.json").read_text())["name"]
    same = quick_run_dir / "checkpoints" / latest / "state.pt"
    proc = bench(
        "tokenizer_drift", str(quick_run_dir), "--frames", "64", "--states", str(same), str(same)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[1].split()[-2] == "0.000"  # a tokenizer against itself


def test_run_without_checkpoint_is_one_line(tmp_path):
    proc = bench("tokenizer_drift", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "has no committed checkpoint yet" in proc.stderr


def test_wm_fit_scores_against_repeating_the_previous_frame(quick_run_dir):
    proc = bench("wm_fit", str(quick_run_dir), "--updates", "4", "--every", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("update ")]
    assert [line.split(":")[0] for line in lines] == ["update 2", "update 4"]
    for line in lines:
        accuracy = float(line.split("held-out token accuracy ")[1].split()[0])
        repeat = float(line.split("(repeat previous ")[1].split(")")[0])
        assert 0.0 <= accuracy <= 1.0 and 0.0 <= repeat <= 1.0


def test_wm_fit_copy_task_keeps_the_asked_share(quick_run_dir):
    proc = bench("wm_fit", str(quick_run_dir), "--updates", "1", "--copy-task", "0.25")
    assert proc.returncode == 0, proc.stderr[-2000:]
    repeat = float(proc.stdout.split("(repeat previous ")[1].split(")")[0])
    assert 0.72 < repeat < 0.9  # kept tokens, plus redraws of the same code (1 in #codes)


def test_wm_fit_bad_input_is_one_line(quick_run_dir, tmp_path):
    for args, message in (
        ((str(tmp_path / "none"),), "does not exist"),
        ((str(quick_run_dir), "tokenizer.vocab_size=3"), "only world_model.KEY=VALUE"),
        ((str(quick_run_dir), "world_model.num_heads=3"), "divisible by world_model.num_heads"),
    ):
        proc = bench("wm_fit", *args, "--updates", "1")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.startswith("rem diagnose wm-fit: error:") and message in proc.stderr


def test_wm_map_writes_the_map_and_reuses_its_cache(tmp_path):
    """Three points on Catch frames at a tiny budget, IRIS's world model among them: the
    table, the figure, the per-point cache (a second run trains nothing) and the cut of a
    cached point at a smaller budget."""
    out = tmp_path / "map"
    args = ["--games", "Catch", "--configs", "base", "lr3e-3", "iris", "--frames", "150"]
    args += ["--tokenizer-updates", "3", "--max-updates", "4", "--every", "2", "--out", str(out)]
    proc = bench("wm_map", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tokenizer tokenizer_Catch_4x4_w64.pt" in proc.stdout  # trained once, shared
    assert proc.stdout.count("tokenizer tokenizer_") == 1
    table = (out / "wm_map.md").read_text()
    assert "| Catch  | base " in table and "| Catch  | lr3e-3 " in table
    assert "| Catch  | iris " in table
    assert (out / "wm_map.png").stat().st_size > 0
    rows = (out / "wm_map.csv").read_text().splitlines()
    header = "game,name,grid,width,heads,layers,lr,agent,codes_used,updates,cpu_s"
    assert rows[0].startswith(header)
    assert len(rows) == 1 + 3 * 2  # 3 points x scores at updates 2 and 4

    again = bench("wm_map", *args[:-2], "--max-updates", "2", "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert " update 2:" not in again.stdout and "tokenizer_" not in again.stdout  # no training
    assert len((out / "wm_map.csv").read_text().splitlines()) == 1 + 3  # cut at 2 updates

    only = ["--configs", "base", "layers5", "--cached-only", "--frames", "150", "--out", str(out)]
    cached = bench("wm_map", "--games", "Catch", *only)
    assert cached.returncode == 0, cached.stderr[-2000:]
    assert (
        "layers5: not in the cache, left out" in cached.stdout and " update 2:" not in cached.stdout
    )
    assert "| Catch  | base " in (out / "wm_map.md").read_text()

    (out / "fit_Catch_base.json").write_text('{"rows": [')  # a torn cache file
    torn = bench("wm_map", "--games", "Catch", *only)
    assert torn.returncode == 2 and "Traceback" not in torn.stderr, torn.stderr[-2000:]
    assert "fit_Catch_base.json is not a readable fit" in torn.stderr and "delete it" in torn.stderr


def test_wm_map_bad_game_is_one_line_before_any_work(tmp_path):
    proc = bench("wm_map", "--games", "Catch", "Pongg", "--out", str(tmp_path / "m"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("rem diagnose wm-map: error: unknown game 'Pongg'")
    assert not list((tmp_path / "m").glob("frames_*"))  # Catch was not played first
