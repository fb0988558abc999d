"""The pilot: its games (from the published runs), its cost units, its go / no-go rules, its
Snakemake target planned with the paper preset, and (slow) run end to end at quick size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rem.config import load_config
from rem.results.reports.pilot import (
    FAILED,
    NOT_YET,
    PASSED,
    GameResult,
    phase_seconds,
    rank_games,
    rules,
    run_seconds,
    verdict,
)

ROOT = Path(__file__).resolve().parents[1]
PILOT = ROOT / "config" / "pilot.yaml"
PUBLISHED = ROOT / "results" / "published"


def test_the_pilot_games_are_the_top_three_by_worst_published_seed():
    ranked = rank_games(PUBLISHED)
    cfg = yaml.safe_load(PILOT.read_text())
    (variant,) = cfg["variants"]
    assert variant["games"] == [g for g, _, _ in ranked[:3]]
    assert [g for g, _, _ in ranked[:3]] == ["Boxing", "Assault", "CrazyClimber"]
    worst = dict((g, w) for g, w, _ in ranked)
    assert worst["Boxing"] == pytest.approx(6.358, abs=1e-3)  # as config/pilot.yaml says
    assert all(ranked[i][1] >= ranked[i + 1][1] for i in range(len(ranked) - 1))


def test_phase_units_skip_the_epochs_before_a_phase_starts():
    cfg = load_config("paper", None, ["run.epochs=100"])
    rows = []
    for e in range(1, 101):
        rows.append({"epoch": e, "time/collection": 1.0, "time/tokenizer": 5.0 if e > 5 else 0.0,
                     "time/world_model": 9.0 if e > 25 else 0.001,
                     "time/actor_critic": 4.0 if e > 50 else 0.0})  # fmt: skip
    units = phase_seconds(rows, cfg)
    assert units == {"collection": 1.0, "tokenizer": 5.0, "world_model": 9.0,
                     "actor_critic": 4.0}  # fmt: skip
    paper = load_config("paper")
    total = run_seconds(paper, units, 0.0, eval_episode_s=2.0)
    assert total == pytest.approx(500 + 595 * 5 + 575 * 9 + 550 * 4 + (60 * 16 + 100) * 2)


def _game(name, wm=None, final=None, recon=None, epochs=100):
    return GameResult(name, 0, recon or [(10, 0.08), (20, 0.05), (30, 0.04)], [], final,
                      (1.0, 0.5, 1.5, 32), wm or {}, {"mean": 50, "min": 40, "max": 60},
                      epochs)  # fmt: skip


def _wm(acc, repeat, shuffled, f1, f1_major):
    return {"token_acc": acc, "token_acc_repeat": repeat, "token_acc_shuffled": shuffled,
            "reward_f1": f1, "reward_f1_majority": f1_major}  # fmt: skip


def test_rules_say_passed_failed_or_not_yet():
    good = {30: _wm(0.8, 0.7, 0.75, 0.4, 0.3), 50: _wm(0.9, 0.8, 0.85, 0.6, 0.3),
            100: _wm(0.95, 0.8, 0.9, 0.7, 0.3)}  # fmt: skip
    games = [_game("Boxing", good, final=(9.0, 7.0, 11.0, 32)), _game("Assault", good,
             final=(1.2, 0.4, 2.0, 32))]  # fmt: skip
    found = rules(games, [30, 50, 100], 100)
    assert [r.status for r in found] == [PASSED] * 5 and verdict(found) == "GO"
    assert "Boxing 9.0 [7.0, 11.0] vs random 1.0" in found[-1].evidence
    below = {**good, 50: _wm(0.7, 0.8, 0.7, 0.6, 0.3)}  # Assault below repeat at 50
    found = rules([games[0], _game("Assault", below, final=(1.2, 0.4, 2.0, 32))],
                  [30, 50, 100], 100)  # fmt: skip
    assert found[1].status == FAILED and "Assault no" in found[1].evidence
    assert verdict(found) == "NO-GO"
    early = rules([_game("Boxing", {30: good[30]}, epochs=40)], [30, 50, 100], 100)
    assert [r.status for r in early] == [PASSED, NOT_YET, NOT_YET, NOT_YET, NOT_YET]
    assert verdict(early) == "NOT YET"
    stuck = rules([_game("Boxing", good, recon=[(10, 0.08), (30, 0.07)])], [30, 50, 100], 100)
    assert stuck[0].status == FAILED  # 0.07 / 0.08 > 0.75


def test_dry_run_plans_three_paper_runs_packed_the_wm_evals_and_the_report(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "pilot", "--configfile", str(PILOT),
         "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-p"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    counts = dict(
        (line.split()[0], int(line.split()[1]))
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    assert counts["train_pack_0"] == 1 and counts["pilot_wm_eval"] == 9
    assert counts["random_baseline"] == 3 and counts["pilot_report"] == 1
    assert counts["pilot_solo"] == 1
    for game in ("Boxing", "Assault", "CrazyClimber"):
        assert f"runs/pilot/rem/{game}/0/COMPLETED" in out
        for epoch in (30, 50, 100):
            assert f"pilot_world_model/rem/{game}/0/epoch_{epoch}.json" in out
    assert '"--preset", "paper"' in out or "--preset paper" in out
    assert "run.epochs=100" in out and "run.snapshot_every=10" in out


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_pilot_runs_to_its_report(tmp_path):
    """config/pilot.yaml overridden to the quick preset (2 games, packed 2 per job, a solo run
    of 4 epochs): every rule runs for real and the report has the rules, cost and disk."""
    overlay = {
        "preset": "quick",
        "variants": [{"name": "rem", "games": ["Boxing", "Assault"],
                      "overrides": ["run.snapshot_every=2"]}],  # fmt: skip
        "learning": {"random_episodes": 4, "random_seed": 200000, "wm_eval_steps": 100},
        "pilot": {"wm_eval_epochs": [2, 4, 6], "solo_epochs": 4, "gpus": 8},
        "packing": {"runs_per_gpu": 2, "jobs": "per-gpu"},
        "resources": {"train": {"threads": 1, "gpu": 0, "mem_mb": 2000, "runtime": 30},
                      "evaluate": {"threads": 1, "gpu": 0, "mem_mb": 2000, "runtime": 30}},
    }  # fmt: skip
    (tmp_path / "quick_pilot.yaml").write_text(yaml.safe_dump(overlay))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "pilot", "--cores", "2", "--configfile", str(PILOT),
         str(tmp_path / "quick_pilot.yaml"), "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=1700, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = tmp_path / "results" / "runs" / "pilot" / "report"
    text = (report / "pilot.md").read_text()
    assert "## Go / no-go: **" in text
    for status in ("passed", "failed", "not yet"):
        text = text.replace(f"- **{status}**: ", "- **RULE**: ")
    assert text.count("- **RULE**: ") == 5 and text.count("  - why: ") == 5
    assert "Packing slowdown measured: a run's time with 2 runs per GPU is x" in text
    assert "330 runs on 8 GPUs, 1 per GPU" in text and "GPU-hours" in text
    assert "KB per agent step (measured)" in text and "one paper run (600 epochs): ~" in text
    data = json.loads((report / "pilot.json").read_text())
    assert set(data["cost"]["epoch_phase_s"]) == {"collection", "tokenizer", "world_model",
                                                  "actor_critic"}  # fmt: skip
    assert data["cost"]["slowdown"]["2"] > 0 and data["runs"] == 2
    assert {g["game"]: sorted(g["world_model"]) for g in data["games"]} == {
        "Boxing": ["2", "4", "6"], "Assault": ["2", "4", "6"]}  # fmt: skip
    assert (report / "pilot_learning.png").stat().st_size > 10_000
    # rem plan reads the pilot's units
    plan = subprocess.run([sys.executable, "-m", "rem", "plan", "--gpus", "8", "--pilot",
                           str(report / "pilot.json"), "--json"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["measurement"]["source"].startswith("pilot ")
