"""Seed planner: its CI widths agree with a direct simulation on the published REM runs
(whole synthetic experiments, each with rliable's stratified bootstrap) within 10%; power
grows with the difference and the run count; the command writes its table and figure."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from rem.games import ABLATION_GAMES
from rem.results.commands import main as cli_main
from rem.results.reports import seed_plan as seeds
from rem.results.reports.studies import study_outputs
from rem.results.score_files import load_references, load_scores
from rem.results.stats.scores import normalize

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"


@pytest.fixture(scope="module")
def rem_hns():
    refs = load_references(PUBLISHED)
    raw = load_scores(
        PUBLISHED / "REM.json", name="REM", known_games=refs.games, required_games=refs.games
    )
    return normalize(refs, raw), {"26 games": refs.games, "8 ablation games": tuple(ABLATION_GAMES)}


@pytest.fixture(scope="module")
def planned(rem_hns):
    hns, sets = rem_hns
    return seeds.plan_seeds(hns, sets, runs=(3, 5, 10), deltas=(0.1, 0.3), reps=8000, seed=0)


def test_planned_ci_widths_agree_with_a_direct_simulation(rem_hns, planned):
    hns, sets = rem_hns
    rows = [r for r in planned if r.runs in (3, 10)]
    checks = seeds.check(hns, sets, rows, experiments=80, reps=400, seed=0)
    for c in checks:
        assert 0.9 <= c.width_ratio <= 1.1, (c.games, c.runs, c.planned_width, c.simulated_width)
        # Power agrees too, within the noise of 80 simulated experiment pairs.
        for d in (0.1, 0.3):
            assert abs(c.planned_power[d] - c.simulated_power[d]) <= 0.2, (c, d)


def test_widths_shrink_and_power_grows_with_runs(planned):
    for games in ("26 games", "8 ablation games"):
        rows = [r for r in planned if r.games == games]
        assert [r.runs for r in rows] == [3, 5, 10]
        widths = [r.ci_width for r in rows]
        assert widths[0] > widths[1] > widths[2]
        # ~1/sqrt(n): 3 -> 10 runs narrows the interval by ~45%.
        assert 0.45 < widths[2] / widths[0] < 0.7
        for r in rows:
            assert r.ci_width < r.spread  # a bootstrap over n runs is narrower (sqrt((n-1)/n))
            assert r.ci_width == pytest.approx(r.spread * np.sqrt((r.runs - 1) / r.runs))
            assert r.false_positive <= r.power[0.1] <= r.power[0.3]
        assert rows[0].power[0.3] <= rows[-1].power[0.3]
        assert rows[0].power[0.1] < rows[-1].power[0.1]
    # 8 games are far noisier than 26 (and REM's IQM there is 2.2, not 0.67).
    big = {r.runs: r for r in planned if r.games == "26 games"}
    small = {r.runs: r for r in planned if r.games == "8 ablation games"}
    assert all(small[n].ci_width > 2 * big[n].ci_width for n in (3, 5, 10))
    assert big[5].iqm == pytest.approx(0.673, abs=5e-4)


def test_difference_interval_is_centred_on_the_shift(rem_hns):
    hns, sets = rem_hns
    sub = hns.subset(sets["26 games"])
    shifted = type(sub)("B", sub.games, {g: v + 0.25 for g, v in sub.runs.items()})
    lo, hi = seeds.difference_interval(sub, shifted, reps=300, seed=1)
    assert lo < 0.25 < hi and lo > 0  # IQM is shift-equivariant: the CI brackets 0.25


def test_plan_seeds_command_writes_table_and_figure(tmp_path, capsys):
    code = cli_main(["plan-seeds", "--runs", "3", "5", "--delta", "0.1", "--seed-plan-reps",
                     "2000", "--check", "--seed-check-experiments", "5", "--seed-check-reps",
                     "50", "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "| 26 games | 3 |" in out and "| 8 ablation games | 5 |" in out
    for name in study_outputs("seeds"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader((tmp_path / "seed_plan.csv").open()))
    assert [(r["games"], r["runs_per_game"]) for r in rows] == [
        ("26 games", "3"), ("26 games", "5"), ("8 ablation games", "3"), ("8 ablation games", "5")
    ]  # fmt: skip
    assert {"expected_ci_width_95", "power_delta_0.1", "false_positive_rate"} <= set(rows[0])
    check = list(csv.DictReader((tmp_path / "seed_plan_check.csv").open()))
    assert len(check) == 4 and float(check[0]["width_ratio"]) > 0
    assert (tmp_path / "seed_plan.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, message",
    [(["--algorithm", "Nope"], "no published runs; choose one of"),
     (["--runs", "1", "5"], "must be >= 2")],
)  # fmt: skip
def test_plan_seeds_bad_input_is_one_line(tmp_path, capsys, args, message):
    code = cli_main(["plan-seeds", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_check_cache_reuses_the_same_inputs_and_only_those(rem_hns, tmp_path, monkeypatch):
    hns, sets = rem_hns
    rows = seeds.plan_seeds(hns, sets, runs=(3,), deltas=(0.1,), reps=500, seed=0)
    first, path, reused = seeds.cached_check(hns, sets, rows, tmp_path, experiments=3, reps=30)
    assert not reused and path.parent == tmp_path and path.is_file()

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated although the same inputs are stored")

    monkeypatch.setattr(seeds, "check", no_simulation)
    again, same_path, reused = seeds.cached_check(hns, sets, rows, tmp_path, experiments=3, reps=30)
    assert reused and same_path == path and again == first  # exact floats, every field
    # Any other setting, seed or run set is another key: simulated, not read.
    for changed in ({"experiments": 4, "reps": 30}, {"experiments": 3, "reps": 31},
                    {"experiments": 3, "reps": 30, "seed": 1}):  # fmt: skip
        with pytest.raises(AssertionError, match="simulated although"):
            seeds.cached_check(hns, sets, rows, tmp_path, **changed)
    shifted = type(hns)(hns.name, hns.games, {g: v + 1e-9 for g, v in hns.runs.items()})
    with pytest.raises(AssertionError, match="simulated although"):
        seeds.cached_check(shifted, sets, rows, tmp_path, experiments=3, reps=30)


def test_unreadable_stored_check_is_one_line(rem_hns, tmp_path, capsys):
    hns, sets = rem_hns
    args = ["plan-seeds", "--runs", "3", "--delta", "0.1", "--seed-plan-reps", "500", "--check",
            "--seed-check-experiments", "2", "--seed-check-reps", "20", "--check-cache",
            str(tmp_path / "cache"), "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli_main(args) == 0
    assert "check stored in" in capsys.readouterr().out
    (stored,) = (tmp_path / "cache").iterdir()
    stored.write_text("{")
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert f"stored seed check {stored} is unreadable" in err and "delete it" in err
    assert "Traceback" not in err


def test_the_paper_target_finds_its_check_stored():
    """`snakemake paper` reads the committed check of the default settings; an edit to the
    simulation's code, numpy or the published runs makes it simulate again (~30 s): then
    commit the new file that `snakemake --cores 2 paper` stored in results/cache/seed_check/."""
    from rem.results.settings import ResultsConfig

    cfg = ResultsConfig()
    refs = load_references(PUBLISHED)
    raw = load_scores(PUBLISHED / "REM.json", name="REM", known_games=refs.games,
                      required_games=None)  # fmt: skip
    hns = normalize(refs, raw)
    sets = {f"{len(refs.games)} games": refs.games,
            f"{len(cfg.ablation_games)} ablation games": tuple(cfg.ablation_games)}  # fmt: skip
    rows = seeds.plan_seeds(hns, sets, seeds.DEFAULT_RUNS, seeds.DEFAULT_DELTAS, reps=10)
    key = seeds.check_key(hns, sets, rows, cfg.seed_check_experiments, cfg.seed_check_reps, 0)
    assert (ROOT / "results" / "cache" / "seed_check" / f"{key}.json").is_file()


def test_colorblind_palette_is_seaborns():
    import seaborn as sns

    from rem.results.render.figures import COLORBLIND

    assert list(COLORBLIND) == list(sns.color_palette("colorblind", 10))
