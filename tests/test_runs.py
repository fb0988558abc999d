"""rem.runs: the one run folder and sweep contract (layout, readers, config expansion)."""

from __future__ import annotations

import json

import pytest

from rem.runs.files import (
    ManifestError,
    ScoreError,
    finished_runs,
    read_manifest,
    read_metrics,
    read_score,
)
from rem.runs.layout import COMPLETED, MANIFEST, METRICS, SCORES, RunKey, run_dir_text, run_path
from rem.runs.sweep import SweepError, expected_runs, parse_run_keys


def test_a_run_key_is_a_tuple_and_prints_as_its_folder(tmp_path):
    key = RunKey("rem", "Pong", 3)
    variant, game, seed = key
    assert (variant, game, seed) == ("rem", "Pong", 3) and str(key) == "rem/Pong/3"
    assert run_path(tmp_path, key) == tmp_path / "rem" / "Pong" / "3"
    assert run_dir_text("runs", *key) == "runs/rem/Pong/3"


def test_finished_runs_need_the_marker_and_the_scores(tmp_path):
    keys = [RunKey("rem", "Pong", s) for s in range(3)]
    for key, files in zip(keys, ([COMPLETED, SCORES], [SCORES], [COMPLETED])):
        run_path(tmp_path, key).mkdir(parents=True)
        for name in files:
            (run_path(tmp_path, key) / name).write_text("{}")
    assert finished_runs(tmp_path, keys) == keys[:1]


def test_manifest_metrics_and_scores_are_read_with_one_rule(tmp_path):
    assert read_manifest(tmp_path) is None and read_metrics(tmp_path) == []
    (tmp_path / MANIFEST).write_text("[1]")
    with pytest.raises(ManifestError) as err:
        read_manifest(tmp_path)
    assert err.value.parsed
    (tmp_path / METRICS).write_text('{"epoch": 1}\n{"epoch": 2, "ti')  # a torn last line
    assert read_metrics(tmp_path) == [{"epoch": 1}]
    scores = tmp_path / SCORES
    scores.write_text(json.dumps({"returns": [1, 2], "game": "Pong", "seed": 3}))
    assert read_score(scores, RunKey("rem", "Pong", 3)) == (1.5, 2)
    with pytest.raises(ScoreError, match="seed is 3 but the run is 4"):
        read_score(scores, RunKey("rem", "Pong", 4))


def test_a_config_expands_into_runs_in_the_workflows_order():
    cfg = {
        "seeds": [0, 1],
        "variants": [{"name": "rem", "games": ["Pong", "Boxing"]}, {"name": "b", "games": ["Pong"], "seeds": [5]}],
    }  # fmt: skip
    assert expected_runs(cfg) == [
        ("rem", "Pong", 0), ("rem", "Pong", 1), ("rem", "Boxing", 0), ("rem", "Boxing", 1),
        ("b", "Pong", 5),
    ]  # fmt: skip
    with pytest.raises(SweepError, match=r"variants\[0\].games"):
        expected_runs({"seeds": [0], "variants": [{"name": "rem", "games": ["NoSuchGame"]}]})
    assert parse_run_keys(["rem:Pong:3"]) == [RunKey("rem", "Pong", 3)]
    with pytest.raises(SweepError, match="VARIANT:GAME:SEED"):
        parse_run_keys(["rem:Pong"])
