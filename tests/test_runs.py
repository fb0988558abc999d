"""rem.runs: the one run folder and sweep contract (layout, readers, config expansion)."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_the_write_fault_hook_classifies_the_layouts_own_names():
    """rem.utils.write_faults sits below rem.runs (layer 0, used by every atomic write), so it
    spells the run-folder names itself; this keeps its spelling equal to rem.runs.layout's."""
    from rem.runs import layout
    from rem.utils.write_faults import write_kind

    run = Path("runs/rem/Pong/0")
    epoch = layout.checkpoints_dir(run) / "epoch_000010"
    assert write_kind(epoch / layout.REPLAY / "episode_0.npz") == "replay"
    assert write_kind(epoch / layout.STATE) == "state"
    assert write_kind(layout.checkpoints_dir(run) / layout.LATEST) == "commit"
    assert write_kind(run / layout.METRICS) == "metrics"
    assert write_kind(run / layout.MEDIA / layout.EPISODES / "train_1.npz") == "media"
    assert write_kind(run / layout.SCORES) == "scores"
    for name in (layout.MANIFEST, layout.FAILURES, layout.COMPLETED):
        assert write_kind(run / name) == "report"
