"""The rliable traps: each gives its one-line error (or, for unequal run counts, a note)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rliable import metrics as rly_metrics

from rem.games import ATARI_100K_GAMES
from rem.results.commands import main as cli_main
from rem.results.score_files import load_references, load_scores
from rem.results.stats import aggregates as M
from rem.results.stats import bootstrap as B
from rem.results.stats import checks as C
from rem.results.stats.scores import normalize, scores_from_matrix
from rem.results.stats.types import References, ScoreFileError, Scores

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"


@pytest.fixture(scope="module")
def refs() -> References:
    return load_references(PUBLISHED)


@pytest.fixture(scope="module")
def rem_raw(refs) -> Scores:
    return load_scores(
        PUBLISHED / "REM.json", name="REM", known_games=refs.games, required_games=refs.games
    )


def test_swapped_axes_array_is_refused(refs, rem_raw):
    m = normalize(refs, rem_raw).matrix()  # (5 runs, 26 games): rliable's layout
    assert C.check_matrix(m, refs.games).shape == (5, 26)
    with pytest.raises(
        C.ScoreInputError, match=r"shape \(26, 5\) has the 26 games on axis 0.*array\.T"
    ):
        C.check_matrix(m.T, refs.games, "REM")
    with pytest.raises(C.ScoreInputError, match="does not have 26 games on either axis"):
        C.check_matrix(m[:, :20], refs.games)
    s = scores_from_matrix(m, refs.games, "REM")
    assert M.point_aggregates(s)[2] == pytest.approx(rly_metrics.aggregate_iqm(m))


def test_score_file_keyed_by_run_says_it_looks_swapped(tmp_path, refs, rem_raw):
    swapped = {str(r): [float(rem_raw.runs[g][r]) for g in refs.games] for r in range(5)}
    path = tmp_path / "ALGO.json"
    path.write_text(json.dumps(swapped))
    with pytest.raises(ScoreFileError, match="looks like runs x games; key it by game"):
        load_scores(path, name="ALGO", known_games=refs.games, required_games=refs.games)


def test_normalised_scores_fed_as_raw_are_refused(refs, rem_raw):
    hns = normalize(refs, rem_raw)
    with pytest.raises(C.ScoreInputError, match="looks already human-normalised"):
        normalize(refs, hns)


def test_normalised_file_in_the_published_folder_stops_the_cli(tmp_path, refs, rem_raw, capsys):
    pub = tmp_path / "published"
    shutil.copytree(PUBLISHED, pub)
    hns = normalize(refs, rem_raw)
    (pub / "IRIS.json").write_text(json.dumps({g: hns.runs[g].tolist() for g in refs.games}))
    code = cli_main(["paper", "--study", "main", "--published-dir", str(pub), "--out",
                     str(tmp_path / "out"), "--reps-aggregates", "10", "--reps-profiles", "5",
                     "--reps-improvement", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "IRIS.json: looks already human-normalised" in err
    assert "Traceback" not in err


def test_raw_scores_fed_as_normalised_are_refused(rem_raw):
    with pytest.raises(C.ScoreInputError, match="looks like raw game scores"):
        B.aggregate_intervals({"REM": rem_raw}, reps=10, seed=0)
    with pytest.raises(C.ScoreInputError, match="normalise first"):
        B.improvement_intervals({"p": (rem_raw, rem_raw)}, reps=10, seed=0)


def test_real_low_scores_are_not_mistaken_for_normalised_ones(refs):
    # A random policy's raw scores (the table itself): raw, not normalised.
    rand = Scores("random", refs.games, {g: np.array([refs.random[g]]) for g in refs.games})
    normalize(refs, rand)
    # Two games only: too little evidence to judge, so no error.
    few = Scores(
        "x", ("Assault", "Breakout"), {"Assault": np.array([0.5]), "Breakout": np.array([1.0])}
    )
    normalize(refs, few)


def test_game_missing_from_the_normalisation_table(refs):
    human = {g: v for g, v in refs.human.items() if g != "Pong"}
    random = {g: v for g, v in refs.random.items() if g != "Pong"}
    partial = References(random=random, human=human)
    s = Scores("x", ("Pong", "Boxing"), {"Pong": np.array([1.0]), "Boxing": np.array([2.0])})
    with pytest.raises(C.ScoreInputError, match="no normalisation score for Pong"):
        normalize(partial, s)
    with pytest.raises(ScoreFileError, match="unknown game 'Pong'"):
        partial.hns("Pong", 1.0)


def test_unequal_run_counts_give_a_note_not_an_error(refs):
    raw = load_scores(
        PUBLISHED / "ablations" / "ablation-no-pop.json",
        name="No POP",
        known_games=refs.games,
        required_games=None,
    )
    hns = normalize(refs, raw)
    note = C.run_count_note({"No POP": hns})
    assert note.startswith("Unequal run counts (No POP 3-5 runs per game)")
    assert "legitimate" in note
    iv = B.aggregate_intervals({"No POP": hns}, reps=50, seed=0)["No POP"]
    assert np.all(iv.low <= iv.high)
    equal = {g: hns.runs[g][:3] for g in hns.games}
    assert C.run_count_note({"x": Scores("x", hns.games, equal)}) == ""
    with pytest.raises(ValueError, match="unequal run counts"):
        hns.matrix()  # the rliable (runs x games) layout does not exist for it


def test_batch_iqm_is_rliables(refs, rem_raw):
    m = normalize(refs, rem_raw).matrix()
    assert M.batch_iqm(m.ravel()[None])[0] == pytest.approx(rly_metrics.aggregate_iqm(m), abs=1e-12)
    assert len(ATARI_100K_GAMES) == m.shape[1]
