"""The learning benchmark's report (rem/results/reports/learning.py) and its Snakemake target."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import rem_exe

from rem.results.reports.learning import (
    LearningReportError,
    RunRecord,
    final_returns_table,
    load_random,
    mean_ci,
    read_metrics,
    seed_returns_table,
    write_learning_report,
)

ROOT = Path(__file__).resolve().parents[1]


def _record(game: str, seed: int, returns: list[float]) -> RunRecord:
    return RunRecord(game, seed, [], returns)


def test_mean_ci_brackets_the_mean_and_narrows_with_more_episodes():
    few = mean_ci([0.0, 10.0, 5.0, 7.0])
    many = mean_ci([0.0, 10.0, 5.0, 7.0] * 25)
    assert few[1] <= few[0] <= few[2]
    assert many[0] == pytest.approx(few[0])
    assert (many[2] - many[1]) < (few[2] - few[1]) / 3


def test_verdicts_follow_the_confidence_intervals():
    runs = [
        _record("Boxing", 0, [20.0, 22.0, 25.0, 21.0]),
        _record("Boxing", 1, [19.0, 24.0, 23.0, 22.0]),
        _record("Pong", 0, [-20.0, -21.0, -19.0, -21.0]),
        _record("Krull", 0, [-5.0, -6.0, -5.5, -4.0]),
    ]
    random = {
        "Boxing": [0.0, -2.0, 3.0, 1.0, -1.0, 2.0],
        "Pong": [-21.0, -20.0, -19.0, -21.0],
        "Krull": [10.0, 11.0, 12.0, 9.0],
    }
    table = final_returns_table(runs, random).set_index("game")
    assert table.loc["Boxing", "verdict"] == "beats random (CIs disjoint)"
    assert table.loc["Boxing", "agent_episodes"] == 8  # seeds pooled
    assert table.loc["Boxing", "seeds"] == 2
    assert table.loc["Boxing", "agent_seed_means"] == "22.0 / 22.0"
    assert table.loc["Pong", "verdict"] == "not distinguishable (CIs overlap)"
    assert table.loc["Krull", "verdict"] == "below random (CIs disjoint)"


def test_each_seed_gets_its_own_verdict_where_the_pooled_one_hides_a_failed_seed():
    """Two strong seeds carry the pooled CI above random; the failed third seed must still
    show as its own run below random (the learning targets count seeds)."""
    strong = [6.0, 7.0, 8.0, 6.0, 7.0, 8.0] * 6
    runs = [
        _record("Catch", 0, strong),
        _record("Catch", 1, strong),
        _record("Catch", 2, [-8.0, -7.0, -6.0, -8.0, -7.0, -6.0] * 6),
    ]
    random = {"Catch": [-6.0, -4.0, -5.0, -3.0, -5.0, -4.0] * 16}
    pooled = final_returns_table(runs, random)
    assert pooled.verdict[0] == "beats random (CIs disjoint)"
    seeds = seed_returns_table(runs, random).set_index("seed")
    assert list(seeds.verdict) == [
        "beats random (CIs disjoint)",
        "beats random (CIs disjoint)",
        "below random (CIs disjoint)",
    ]
    assert seeds.loc[2, "episodes"] == 36
    assert seeds.loc[0, "mean"] == pytest.approx(7.0)
    assert seeds.loc[0, "ci_low"] < 7.0 < seeds.loc[0, "ci_high"]


def test_half_written_last_metrics_line_is_skipped_but_a_broken_middle_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2]
    path.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(LearningReportError, match="metrics.jsonl:2"):
        read_metrics(path)


def test_missing_or_wrong_random_baseline_names_the_fix(tmp_path):
    with pytest.raises(LearningReportError, match="rem evaluate --game Boxing --policy random"):
        load_random(tmp_path, ["Boxing"])
    (tmp_path / "Boxing.json").write_text(json.dumps({"policy": "checkpoint", "returns": [1]}))
    with pytest.raises(LearningReportError, match="not random"):
        load_random(tmp_path, ["Boxing"])


def test_report_from_a_real_run_random_baseline_and_wm_eval(quick_run_dir, tmp_path):
    """A real quick-preset run, a real random-policy evaluation under the same preset and a
    real `rem wm-eval`: the report's tables, figure and Markdown agree with their inputs."""
    manifest = json.loads((quick_run_dir / "manifest.json").read_text())
    game, seed = manifest["game"], manifest["seed"]
    runs = tmp_path / "runs"
    shutil.copytree(quick_run_dir, runs / "rem" / game / str(seed))
    random_dir, wm_dir = tmp_path / "random", tmp_path / "world_model"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [rem_exe(), "evaluate", "--game", game, "--policy", "random", "--episodes", "4",
         "--seed", "7", "--envs", "1", "--preset", "quick", "--out", str(random_dir / f"{game}.json")],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    random = json.loads((random_dir / f"{game}.json").read_text())
    assert random["protocol"]["test_max_raw_frames"] == 1000  # the quick preset's cap
    wm_json = wm_dir / "rem" / game / f"{seed}.json"
    subprocess.run(
        [rem_exe(), "wm-eval", str(runs / "rem" / game / str(seed)), "--steps", "200",
         "--json", str(wm_json)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip

    out = tmp_path / "report"
    finals = write_learning_report(runs, "rem", random_dir, wm_dir, out, project_root=tmp_path)
    scores = json.loads((quick_run_dir / "scores.json").read_text())
    row = finals.iloc[0]
    assert row.game == game and row.agent_episodes == len(scores["returns"])
    assert row.agent_mean == pytest.approx(scores["mean_return"])
    assert row.random_mean == pytest.approx(random["mean_return"])
    assert pd.read_csv(out / "final_returns.csv").shape[0] == 1
    wm = pd.read_csv(out / "world_model.csv")
    figures = json.loads(wm_json.read_text())
    assert wm.token_acc[0] == pytest.approx(figures["token_accuracy"]["model"], abs=1e-4)
    assert wm.token_acc_repeat[0] == pytest.approx(
        figures["token_accuracy"]["repeat_previous"], abs=1e-4
    )
    assert (out / "learning_curves.png").stat().st_size > 10_000
    text = (out / "learning.md").read_text()
    assert "preset `quick`" in text and game in text and "of 1 games" in text
    assert "of 1 runs** (each seed alone)" in text
    assert pd.read_csv(out / "seed_returns.csv").seed.tolist() == [seed]
    assert str(tmp_path) not in text  # paths relative to the project root


def test_learning_target_dry_run_plans_baselines_wm_eval_and_report(tmp_path):
    """`snakemake learning` with config/learning.yaml plans every run, one random baseline per
    game, one wm-eval per run and one report per variant."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "learning", "--configfile",
         str(ROOT / "config" / "learning.yaml"), "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["train"] == 6  # 3 games x 2 seeds
    assert counts["random_baseline"] == 3
    assert counts["wm_eval"] == 6
    assert counts["learning_report"] == 1
