"""The paper target's outputs (at reduced bootstrap reps): files, extra/missing baselines,
byte-for-byte determinism, and the reproduction report of our own runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rem.results.reports.paper import run_paper
from rem.results.reports.reproduction import ReportError, write_reproduction_report
from rem.results.reports.studies import study_outputs
from rem.results.score_files import load_references
from rem.results.settings import ResultsConfig

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
SMALL = {"reps_aggregates": 200, "reps_profiles": 20, "reps_improvement": 20}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A copy of the published scores plus a baseline 'the user added' (MyAgent)."""
    pub = tmp_path_factory.mktemp("published")
    shutil.copytree(PUBLISHED, pub, dirs_exist_ok=True)
    runs = json.loads((PUBLISHED / "IRIS.json").read_text())
    mine = {g: [1.1 * x for x in v] for g, v in runs.items()}
    (pub / "extra" / "MyAgent.json").write_text(json.dumps(mine))
    return pub


@pytest.fixture(scope="module")
def plain(published, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plain")
    run_paper(ResultsConfig(published_dir=str(published), **SMALL), out, ("main",))
    return out


@pytest.fixture(scope="module")
def extra(published, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extra")
    cfg = ResultsConfig(
        published_dir=str(published), baselines_extra=["MyAgent", "DIAMOND", "Ghost"], **SMALL
    )
    run_paper(cfg, out, ("main", "ablations"))
    return out


def test_main_study_writes_every_output(plain):
    for name in study_outputs("main"):
        assert (plain / name).stat().st_size > 0, name
    agg = rows(plain / "aggregates.csv")
    assert list(agg[0]) == ["algorithm", "metric", "estimate", "ci_low", "ci_high"]
    algos = ["SimPLe", "DreamerV3", "TWM", "STORM", "IRIS", "REM"]
    assert [r["algorithm"] for r in agg[::5]] == algos
    assert {r["metric"] for r in agg} == {"mean", "median", "iqm", "optimality_gap", "superhuman"}
    rem = {r["metric"]: r for r in agg if r["algorithm"] == "REM"}
    assert float(rem["iqm"]["estimate"]) == pytest.approx(0.673, abs=5e-4)
    assert float(rem["iqm"]["ci_low"]) < 0.673 < float(rem["iqm"]["ci_high"])
    assert rem["superhuman"]["estimate"] == "12"
    per_game = rows(plain / "per_game.csv")
    assert len(per_game) == 26 and per_game[0]["game"] == "Alien"
    assert {"Random", "Human", "REM", "REM runs"} <= set(per_game[0])
    assert "\\begin{tabular}" in (plain / "per_game.tex").read_text()
    assert (plain / "aggregates.pdf").read_bytes().startswith(b"%PDF")
    assert (plain / "iqm.png").read_bytes().startswith(b"\x89PNG")
    profile = rows(plain / "performance_profile.csv")
    assert len(profile) == 6 * 201 and profile[-1]["tau"] == "8"


def test_an_added_baseline_file_adds_rows(plain, extra):
    before, after = rows(plain / "aggregates.csv"), rows(extra / "aggregates.csv")
    added = [r for r in after if r["algorithm"] in ("MyAgent", "DIAMOND")]
    assert len(after) == len(before) + len(added) == len(before) + 10
    assert "MyAgent" in rows(extra / "per_game.csv")[0]
    pairs = [r["pair"] for r in rows(extra / "probability_of_improvement.csv")]
    assert "REM,MyAgent" in pairs and "REM,DIAMOND" in pairs
    diamond = {r["metric"]: float(r["estimate"]) for r in after if r["algorithm"] == "DIAMOND"}
    assert diamond["mean"] == pytest.approx(1.46, abs=5e-3)  # DIAMOND paper: 1.46, IQM 0.641
    assert diamond["iqm"] == pytest.approx(0.641, abs=5e-4)
    # REM's intervals do not move when a baseline joins.
    rem_before = [r for r in before if r["algorithm"] == "REM"]
    assert rem_before == [r for r in after if r["algorithm"] == "REM"]


def test_a_listed_but_absent_baseline_is_reported_missing(extra, published):
    assert "Ghost" in (extra / "aggregates.md").read_text()
    assert "Missing baselines" in (extra / "per_game.md").read_text()
    prov = json.loads((extra / "provenance.json").read_text())
    # Named relative to the project root, never as an absolute path of this machine.
    ghost = prov["missing_baselines"]["Ghost"]
    assert ghost.endswith("extra/Ghost.json") and not Path(ghost).is_absolute()
    assert (ROOT / ghost).resolve() == (published / "extra" / "Ghost.json").resolve()
    assert "Ghost" not in {r["algorithm"] for r in rows(extra / "aggregates.csv")}


def test_ablation_study_outputs_and_run_counts(extra):
    for name in study_outputs("ablations"):
        assert (extra / name).stat().st_size > 0, name
    agg = rows(extra / "ablations_aggregates.csv")
    assert len(agg) == 6 * 5
    per_game = rows(extra / "ablations_per_game.csv")
    assert [r["game"] for r in per_game] == [
        "Assault", "Asterix", "ChopperCommand", "CrazyClimber", "DemonAttack", "Gopher",
        "Krull", "RoadRunner",
    ]  # fmt: skip
    assert all(r["No POP runs"] == "5" for r in per_game)
    # The 26-game no-pop comparison is the ragged case: counts are stated, not hidden.
    md = (extra / "ablations_aggregates.md").read_text()
    assert "except Frostbite 3, UpNDown 4" in md
    wide = {r["algorithm"] for r in rows(extra / "ablations_all_games_aggregates.csv")}
    assert wide == {"REM (26 games)", "No POP (26 games)"}


def test_two_runs_write_identical_files(plain, published, tmp_path):
    run_paper(ResultsConfig(published_dir=str(published), **SMALL), tmp_path, ("main",))
    for name in study_outputs("main"):
        assert (tmp_path / name).read_bytes() == (plain / name).read_bytes(), name
    assert b"CreationDate" not in (tmp_path / "iqm.pdf").read_bytes()


# ------------------------------------------------------------------ reproduction report


def make_runs(tmp_path: Path) -> tuple[Path, Path]:
    """A tidy score table and run folders like the workflow's quick preset writes them."""
    refs = load_references(PUBLISHED)
    runs_dir = tmp_path / "runs"
    table = [["variant", "game", "seed", "raw_score", "hns", "episodes"]]
    rng = np.random.default_rng(0)
    for variant in ("rem", "no-action-input", "my-idea"):
        for game in ("Pong", "Breakout", "Krull"):
            for seed in (0, 1):
                raw = float(rng.uniform(-21, 100))
                table.append([variant, game, seed, repr(raw), repr(refs.hns(game, raw)), 3])
                run = runs_dir / variant / game / str(seed)
                run.mkdir(parents=True)
                lines = [
                    json.dumps(
                        {"epoch": e, "collection/return": e * 1.0, "test/return_mean": e + 1.0}
                    )
                    for e in range(1, 6)
                ]
                lines[2] = json.dumps({"epoch": 3, "time/epoch": 1.0})  # keys missing
                lines.append('{"epoch": 6, "collection/ret')  # torn last line
                (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
                manifest = {
                    "game": game, "variant": variant, "seed": seed, "status": "completed",
                    "preset": "quick", "device": "cpu", "perceptual_loss": False,
                    "packages": {"torch": "2.13.0", "numpy": "2.4.6"},
                    "git": {"commit": "0123456789abcdef", "dirty": True}, "sessions": [{}],
                }  # fmt: skip
                if not (variant == "my-idea" and seed == 1):
                    (run / "manifest.json").write_text(json.dumps(manifest))
    scores = tmp_path / "scores.csv"
    with scores.open("w", newline="") as f:
        csv.writer(f).writerows(table)
    return scores, runs_dir


def test_reproduction_report(tmp_path):
    scores, runs_dir = make_runs(tmp_path)
    out = tmp_path / "report"
    cfg = ResultsConfig(published_dir=str(PUBLISHED), **SMALL)
    written = write_reproduction_report(scores, runs_dir, out, cfg)
    assert sorted(p.name for p in written.files) == sorted(study_outputs("report"))
    md = (out / "reproduction.md").read_text()
    assert "## rem (3 games: Breakout, Krull, Pong)" in md
    # no-action-input is published on the 8-game subset only: Krull is compared, the rest noted.
    assert "## no-action-input (1 game: Krull)" in md
    assert "no-action-input: no published runs for Breakout, Pong" in md
    assert "my-idea: no published scores" in md
    assert md.count("P(our run > published run)") == 2
    assert "CIs overlap" in md or "CIs do not overlap" in md
    assert "perceptual_loss" in md and "0123456789+dirty" in md
    assert "no manifest.json" in md
    assert "unreadable line" not in md  # the torn last line is a write in progress, skipped
    agg = rows(out / "aggregates.csv")
    assert {r["algorithm"] for r in agg} == {
        "ours (rem)", "published (rem)", "ours (no-action-input)", "published (no-action-input)",
    }  # fmt: skip
    runs_csv = rows(out / "runs.csv")
    assert len(runs_csv) == 18 and runs_csv[0]["perceptual_loss"] == "off"
    assert (out / "learning_curves.png").read_bytes().startswith(b"\x89PNG")


def test_report_rejects_a_table_whose_hns_disagrees(tmp_path):
    scores, runs_dir = make_runs(tmp_path)
    text = scores.read_text().splitlines()
    fields = text[1].split(",")
    fields[4] = "0.123"
    text[1] = ",".join(fields)
    scores.write_text("\n".join(text) + "\n")
    cfg = ResultsConfig(published_dir=str(PUBLISHED), **SMALL)
    with pytest.raises(ReportError, match=r"scores\.csv, line 2 .*hns 0.123 does not match"):
        write_reproduction_report(scores, runs_dir, tmp_path / "out", cfg)
