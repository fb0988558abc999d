"""rem.results: normalisation, rliable metrics, the fast bootstrap, score-file validation."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from rliable import library as rly_library
from rliable import metrics as rly_metrics

from rem.games import ABLATION_GAMES, ATARI_100K_GAMES
from rem.results.commands import main as cli_main
from rem.results.score_files import load_references, load_scores
from rem.results.settings import ResultsConfigError, load_results_config
from rem.results.stats import aggregates as M
from rem.results.stats import bootstrap as B
from rem.results.stats.scores import normalize
from rem.results.stats.types import ScoreFileError, Scores

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"


@pytest.fixture(scope="module")
def refs():
    return load_references(PUBLISHED)


def hns(name: str, refs, file: str | None = None, games=ATARI_100K_GAMES) -> Scores:
    raw = load_scores(
        PUBLISHED / (file or f"{name}.json"),
        name=name,
        known_games=refs.games,
        required_games=tuple(games),
    )
    return normalize(refs, raw)


def rliable_aggregates(m: np.ndarray) -> np.ndarray:
    return np.array(
        [
            rly_metrics.aggregate_mean(m),
            rly_metrics.aggregate_median(m),
            rly_metrics.aggregate_iqm(m),
            rly_metrics.aggregate_optimality_gap(m),
            np.sum(m.mean(axis=0) >= 1.0),
        ]
    )


# ------------------------------------------------------------------ normalisation, sanity values


def test_reference_games_are_the_atari_100k_games(refs):
    assert refs.games == tuple(sorted(ATARI_100K_GAMES))
    assert set(ABLATION_GAMES) <= set(refs.games)


def test_human_normalisation_formula(refs):
    # Pong: random -20.7, human 14.6 -> a raw score of 14.6 is exactly human level.
    assert refs.random["Pong"] == -20.7 and refs.human["Pong"] == 14.6
    assert refs.hns("Pong", 14.6) == pytest.approx(1.0)
    assert refs.hns("Pong", -20.7) == pytest.approx(0.0)
    s = Scores("x", ("Pong",), {"Pong": np.array([-3.05])})
    assert normalize(refs, s).runs["Pong"][0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("REM", (1.222, 0.280, 0.673, 0.482, 12)),
        ("IRIS", (1.046, 0.289, 0.501, 0.512, 10)),
    ],
)
def test_spec_sanity_values(refs, name, expected):
    """The reference's sanity values: mean, median, IQM, optimality gap and #superhuman of the published runs."""
    est = M.point_aggregates(hns(name, refs))
    np.testing.assert_allclose(est[:4], expected[:4], atol=5e-4)
    assert est[4] == expected[4]


def test_point_estimates_are_rliable_and_batch_code_agrees(refs):
    for name in ("SimPLe", "STORM", "REM"):
        s = hns(name, refs)
        m = s.matrix()
        assert np.array_equal(M.point_aggregates(s), rliable_aggregates(m))
        lay = M.layout(s)
        assert np.array_equal(lay.values, m.ravel())  # rliable's run-major layout
        np.testing.assert_allclose(
            M.batch_aggregates(lay.values[None], lay)[0], rliable_aggregates(m), atol=1e-12
        )


# ------------------------------------------------------------------ fast bootstrap vs rliable


def test_aggregate_cis_match_rliable_at_reduced_reps(refs):
    scores = {n: hns(n, refs) for n in ("IRIS", "REM")}
    ours = B.aggregate_intervals(scores, reps=300, seed=11)
    for name, s in scores.items():
        np.random.seed(11)  # rliable draws from NumPy's global generator
        point, ci = rly_library.get_interval_estimates(
            {name: s.matrix()}, rliable_aggregates, reps=300
        )
        assert np.array_equal(ours[name].estimate, point[name])
        # Same resamples -> same intervals up to float rounding (the issue asks for 0.005).
        np.testing.assert_allclose(ours[name].low, ci[name][0], atol=1e-9)
        np.testing.assert_allclose(ours[name].high, ci[name][1], atol=1e-9)


def test_profile_cis_match_rliable_at_reduced_reps(refs):
    taus = np.linspace(0, 8, 201)
    scores = {"REM": hns("REM", refs)}
    ours = B.profile_intervals(scores, taus, reps=40, seed=3)
    np.random.seed(3)
    point, ci = rly_library.create_performance_profile(
        {"REM": scores["REM"].matrix()}, taus, reps=40
    )
    assert np.array_equal(ours["REM"].estimate, point["REM"])
    np.testing.assert_allclose(ours["REM"].low, ci["REM"][0], atol=1e-9)
    np.testing.assert_allclose(ours["REM"].high, ci["REM"][1], atol=1e-9)


def test_improvement_cis_match_rliable_at_reduced_reps(refs):
    x, y = hns("REM", refs), hns("IRIS", refs)
    ours = B.improvement_intervals({"REM,IRIS": (x, y)}, reps=30, seed=5)["REM,IRIS"]
    np.random.seed(5)
    point, ci = rly_library.get_interval_estimates(
        {"p": (x.matrix(), y.matrix())}, rly_metrics.probability_of_improvement, reps=30
    )
    assert ours.estimate[0] == point["p"]
    assert abs(ours.low[0] - ci["p"][0]) < 1e-9 and abs(ours.high[0] - ci["p"][1]) < 1e-9


def test_bootstrap_is_deterministic_and_seed_sensitive(refs):
    scores = {"IRIS": hns("IRIS", refs)}
    a = B.aggregate_intervals(scores, reps=200, seed=0)["IRIS"]
    b = B.aggregate_intervals(scores, reps=200, seed=0)["IRIS"]
    c = B.aggregate_intervals(scores, reps=200, seed=1)["IRIS"]
    assert np.array_equal(a.low, b.low) and np.array_equal(a.high, b.high)
    assert not np.array_equal(a.low, c.low)


def test_intervals_of_an_algorithm_do_not_depend_on_the_others(refs):
    rem = hns("REM", refs)
    alone = B.aggregate_intervals({"REM": rem}, reps=200, seed=0)["REM"]
    among = B.aggregate_intervals({"IRIS": hns("IRIS", refs), "REM": rem}, reps=200, seed=0)
    assert np.array_equal(alone.low, among["REM"].low)


# ------------------------------------------------------------------ unequal run counts


def ragged_scores(refs) -> Scores:
    """The no-pop ablation on all 26 games: 5 runs, but Frostbite 3 and UpNDown 4."""
    raw = load_scores(
        PUBLISHED / "ablations" / "ablation-no-pop.json",
        name="No POP",
        known_games=refs.games,
        required_games=None,
    )
    return normalize(refs, raw)


def test_ragged_set_is_neither_padded_nor_truncated(refs):
    s = ragged_scores(refs)
    counts = s.run_counts()
    assert counts["Frostbite"] == 3 and counts["UpNDown"] == 4 and sum(counts.values()) == 127
    assert not s.balanced
    with pytest.raises(ValueError, match="unequal run counts"):
        s.matrix()
    lay = M.layout(s)
    assert lay.values.size == 127
    assert sorted(lay.values) == sorted(np.concatenate(list(s.runs.values())))


def test_ragged_metrics_weigh_every_game_equally(refs):
    s = ragged_scores(refs)
    est = M.point_aggregates(s)
    per_game = np.array([np.mean(s.runs[g]) for g in s.games])
    assert est[0] == pytest.approx(per_game.mean())
    assert est[1] == pytest.approx(np.median(per_game))
    clipped = np.mean([np.minimum(s.runs[g], 1).mean() for g in s.games])
    assert est[3] == pytest.approx(1 - clipped)
    # IQM = scipy's trim_mean with game g's runs repeated lcm / n_g times (= 60 / n_g).
    expanded = np.concatenate([np.repeat(s.runs[g], 60 // len(s.runs[g])) for g in s.games])
    assert est[2] == pytest.approx(scipy.stats.trim_mean(expanded, 0.25))
    profile = M.point_profile(s, np.array([0.5]))
    assert profile[0] == pytest.approx(np.mean([np.mean(s.runs[g] > 0.5) for g in s.games]))


def test_ragged_code_path_reduces_to_rliable_on_balanced_sets(refs):
    s = hns("IRIS", refs)
    lay = M.layout(s)
    x = B.resample(lay, B.draw_indices(np.random.RandomState(0), lay.highs, 64))
    np.testing.assert_allclose(
        M.batch_aggregates(x, lay, ragged=True), M.batch_aggregates(x, lay), atol=1e-12
    )
    taus = np.linspace(0, 8, 201)
    np.testing.assert_allclose(
        M.batch_profiles(x, lay, taus, ragged=True), M.batch_profiles(x, lay, taus), atol=1e-12
    )


def test_ragged_bootstrap_resamples_within_each_game(refs):
    s = ragged_scores(refs)
    lay = M.layout(s)
    x = B.resample(lay, B.draw_indices(np.random.RandomState(0), lay.highs, 500))
    for g, game in enumerate(s.games):
        cols = x[:, lay.game == g]
        assert cols.shape[1] == len(s.runs[game])  # each game keeps its own run count
        assert np.isin(cols, s.runs[game]).all()  # and only its own runs
    iv = B.aggregate_intervals({"No POP": s}, reps=500, seed=0)["No POP"]
    assert np.all(iv.low <= iv.estimate + 1e-12) and np.all(iv.estimate <= iv.high + 1e-12)
    rem = hns("REM", refs)
    p = B.improvement_intervals({"x": (rem, s)}, reps=50, seed=0)["x"]
    per_game = [
        rly_metrics.probability_of_improvement(rem.runs[g][:, None], s.runs[g][:, None])
        for g in s.games
    ]
    assert p.estimate[0] == pytest.approx(np.mean(per_game))
    assert p.low[0] <= p.estimate[0] <= p.high[0]


# ------------------------------------------------------------------ malformed score files


def write(tmp_path: Path, content: str | dict, name: str = "ALGO.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def valid_runs() -> dict:
    return {g: [1.0, 2.0] for g in ATARI_100K_GAMES}


def load(path: Path, refs, games=ATARI_100K_GAMES):
    return load_scores(path, name="ALGO", known_games=refs.games, required_games=tuple(games))


def test_bad_json_names_the_file(tmp_path, refs):
    path = write(tmp_path, '{"Alien": [1, 2],')
    with pytest.raises(ScoreFileError, match=r"ALGO\.json: not valid JSON .*line 1"):
        load(path, refs)


def test_unknown_game_names_file_and_game(tmp_path, refs):
    runs = valid_runs()
    runs["Pacman"] = [1.0]
    with pytest.raises(ScoreFileError, match=r"ALGO\.json, game 'Pacman': unknown game"):
        load(write(tmp_path, runs), refs)


def test_nan_names_file_game_and_run(tmp_path, refs):
    path = write(
        tmp_path, json.dumps(valid_runs()).replace('"UpNDown": [1.0, 2.0]', '"UpNDown": [1.0, NaN]')
    )
    with pytest.raises(ScoreFileError, match=r"ALGO\.json, game 'UpNDown', run 1: .*NaN"):
        load(path, refs)


def test_empty_list_where_runs_are_required(tmp_path, refs):
    runs = valid_runs()
    runs["Krull"] = []
    with pytest.raises(ScoreFileError, match=r"ALGO\.json, game 'Krull': empty list"):
        load(write(tmp_path, runs), refs)
    # ...but an empty list outside the study's games is fine (the ablation files have them).
    assert load(write(tmp_path, runs), refs, games=("Pong",)).run_counts() == {"Pong": 2}


def test_missing_game_names_file_and_game(tmp_path, refs):
    runs = valid_runs()
    del runs["Seaquest"]
    with pytest.raises(ScoreFileError, match=r"ALGO\.json, game 'Seaquest': game missing"):
        load(write(tmp_path, runs), refs)


@pytest.mark.parametrize(
    "value, message",
    [("12", "is a JSON str, expected a list"), (["12"], "run 0: '12' is not a number"),
     ([True], "run 0: True is not a number")],
)  # fmt: skip
def test_wrong_types_name_file_and_game(tmp_path, refs, value, message):
    runs = valid_runs()
    runs["Boxing"] = value
    with pytest.raises(ScoreFileError, match=rf"ALGO\.json, game 'Boxing'.*{message}"):
        load(write(tmp_path, runs), refs)


def test_top_level_must_be_an_object(tmp_path, refs):
    with pytest.raises(ScoreFileError, match=r"ALGO\.json: top level is a JSON list"):
        load(write(tmp_path, "[1, 2]"), refs)


def test_cli_reports_a_malformed_file_without_traceback(tmp_path, capsys):
    pub = tmp_path / "published"
    shutil.copytree(PUBLISHED, pub)
    runs = json.loads((pub / "IRIS.json").read_text())
    runs["Hero"] = [1.0, float("nan")]
    (pub / "IRIS.json").write_text(json.dumps(runs))
    code = cli_main(["paper", "--published-dir", str(pub), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "IRIS.json, game 'Hero', run 1" in err and "NaN" in err
    assert not (tmp_path / "out" / "aggregates.csv").exists()


# ------------------------------------------------------------------ settings


def test_results_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("results:\n  baseline_extra: [DIAMOND]\n")
    with pytest.raises(ResultsConfigError, match="unknown key.*results.baseline_extra"):
        load_results_config(path)
    path.write_text("results:\n  reps_aggregates: 0\n")
    with pytest.raises(ResultsConfigError, match="results.reps_aggregates: must be >= 1"):
        load_results_config(path)
    path.write_text("results:\n  baselines_extra: [../../etc/passwd]\n")
    with pytest.raises(ResultsConfigError, match="not a valid baseline name"):
        load_results_config(path)
    path.write_text("preset: quick\n")
    cfg = load_results_config(path)
    assert cfg.reps_aggregates == 50_000 and cfg.baselines_extra == [] and cfg.seed == 0
    assert math.isclose(B.percentile_ci(np.arange(101.0)[:, None])[0][0], 2.5)
