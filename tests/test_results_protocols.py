"""Evaluation-protocol records: every published score file has one, mismatches and unknown
fields are reported (in the tables, the figures' footers, the CSV, once on the terminal),
our runs' record comes from their manifests, and a broken record or a changed
normalisation table is an error that names the problem."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from rem.config import load_config
from rem.results.commands import main as cli_main
from rem.results.protocols import records as P
from rem.results.reports.paper import StudyProtocols, run_paper
from rem.results.reports.studies import ABLATIONS, MAIN, Algorithm
from rem.results.settings import ResultsConfig

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
SMALL = {"reps_aggregates": 100, "reps_profiles": 10, "reps_improvement": 10}


@pytest.fixture(scope="module")
def records() -> P.Protocols:
    return P.load_protocols(PUBLISHED)


def test_every_published_score_file_has_a_complete_record(records):
    files = P.score_files(PUBLISHED)
    assert len(files) == 13  # 7 main files + DIAMOND + 5 ablations
    assert sorted(records.by_file) == files
    for name, rec in records.by_name.items():
        assert set(rec.fields) == set(P.FIELD_NAMES), name
        for field, value in rec.fields.items():
            assert value.source.strip(), f"{name}.{field} has no source"
    # Normalisation tables are versioned: their recorded SHA-256 is the files'.
    for table in ("HUMAN.json", "RANDOM.json"):
        assert records.normalisation[table]["sha256"] == P.sha256(PUBLISHED / table)
        assert "leor-c/REM" in records.normalisation[table]["source"]


def test_a_mismatch_is_reported_with_both_values(records):
    rem, storm = records.by_name["REM"], records.by_name["STORM"]
    diffs = {m.field: m for m in P.mismatches(storm, rem)}
    assert diffs["sticky_actions"].kind == "differs"
    assert (diffs["sticky_actions"].a, diffs["sticky_actions"].b) == ("0.25", "0.0")
    assert diffs["test_episodes"].a == "20" and diffs["test_episodes"].b == "100"
    line = P.mismatch_summary(rem, storm)
    assert line.startswith("STORM vs REM: ") and "sticky-action probability 0.25 vs 0.0" in line
    # IRIS was measured exactly like REM.
    assert P.mismatches(records.by_name["IRIS"], rem) == []


def test_episode_cap_is_compared_in_raw_frames(records):
    rem, twm = records.by_name["REM"], records.by_name["TWM"]
    assert twm["episode_cap"].value == "27000 agent steps"
    # 27,000 agent steps at frame skip 4 = 108,000 raw frames: the same cap, no warning.
    assert "episode_cap" not in {m.field for m in P.mismatches(twm, rem)}
    shorter = P.Protocol("X", {**twm.fields, "episode_cap": P.Value("20000 agent steps", "t")})
    assert "episode_cap" in {m.field for m in P.mismatches(shorter, rem) if m.kind == "differs"}


def test_an_unknown_field_is_reported_as_unknown(records):
    rem, simple = records.by_name["REM"], records.by_name["SimPLe"]
    unknown = {m.field for m in P.mismatches(simple, rem) if m.kind == "unknown"}
    assert {"sticky_actions", "frame_skip", "score_rule"} <= unknown
    assert "cannot compare (unknown): frame skip, sticky-action probability" in P.mismatch_summary(
        rem, simple
    )
    # A baseline the user adds without a record: every field unknown, and the fix is named.
    mine = records.for_file("extra/MyAgent.json", "MyAgent")
    assert mine.unknown == list(P.FIELD_NAMES)
    assert "add one" in mine["frame_skip"].source


def test_paper_tables_figures_and_terminal_carry_the_warnings(tmp_path, capsys):
    code = cli_main(
        ["paper", "--out", str(tmp_path), "--reps-aggregates", "100", "--reps-profiles", "10",
         "--reps-improvement", "10", "--baselines-extra", "DIAMOND"]
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    # Once on the terminal per comparison, though many tables and figures show it.
    assert err.count("protocol mismatches: main comparison") == 1
    assert err.count("protocol mismatches: ablations") == 1
    assert "STORM vs REM: sticky-action probability 0.25 vs 0.0" in err
    for name in ("aggregates.md", "per_game.md"):
        text = (tmp_path / name).read_text()
        assert "STORM vs REM: sticky-action probability 0.25 vs 0.0" in text, name
        assert "DreamerV3 vs REM" in text and "cannot compare (unknown)" in text
    assert "Protocol differences: " in (tmp_path / "per_game.tex").read_text()
    assert (
        "Separate WM emb. vs REM: cannot compare (unknown): test episodes per run"
        in (tmp_path / "ablations_aggregates.md").read_text()
    )
    rows = list(csv.DictReader((tmp_path / "protocol_mismatches.csv").open()))
    assert {"source": "STORM", "reference": "REM", "field": "sticky_actions", "value": "0.25",
            "reference_value": "0.0", "status": "differs"} in rows  # fmt: skip
    page = (tmp_path / "protocols.md").read_text()
    assert "| sticky-action probability |" in page and "0.25 †" in page
    assert "eval.py passes no repeat_action_probability" in page  # the source of the value
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert any(line.startswith("STORM vs REM") for line in prov["protocol_mismatches"])
    # Figure footers: one short line per algorithm that differs.
    algos = [*MAIN, Algorithm("DIAMOND", "extra/DIAMOND.json", 3)]
    footer = StudyProtocols(ResultsConfig(), algos, "t").footer()
    assert "STORM: sticky, no-ops, episodes, temperature, agent steps differ" in footer
    assert not any(line.startswith("IRIS") for line in footer)
    assert (
        StudyProtocols(ResultsConfig(), list(ABLATIONS), "t")
        .footer()[0]
        .endswith("1 field(s) unknown")
    )


def test_our_runs_record_comes_from_the_manifest():
    cfg = load_config("quick", "rem", ()).to_dict()
    fields = P.run_fields({"config": cfg}, "Breakout", 3)
    assert fields["sticky_actions"].value == 0.0  # read from ale-py's registration
    assert "BreakoutNoFrameskip-v4" in fields["sticky_actions"].source
    assert fields["test_noops"].value == f"[1, {cfg['env']['test_noop_max']}]"
    assert fields["episode_cap"].value == f"{cfg['env']['test_max_raw_frames']} raw frames"
    assert fields["test_episodes"].value == 3  # the score file's count wins over the config
    ours = P.merge_runs("ours (rem)", [("Breakout/0", fields)], "test")
    rem = P.load_protocols(PUBLISHED).by_name["REM"]
    diffs = {m.field for m in P.mismatches(ours, rem) if m.kind == "differs"}
    # The quick preset trains for far fewer agent steps and tests on 3 episodes.
    assert {"train_agent_steps", "test_episodes"} <= diffs
    assert "sticky_actions" not in diffs and "frame_skip" not in diffs
    paper = load_config("paper", "rem", ()).to_dict()
    full = P.merge_runs("ours", [("a", P.run_fields({"config": paper}, "Pong", 100))], "t")
    assert P.mismatches(full, rem) == []  # the paper preset is measured as REM was
    # A manifest without a config: every config field unknown, and said so.
    bare = P.run_fields({}, "Pong", None)
    assert bare["frame_skip"].value == P.UNKNOWN and "missing" in bare["frame_skip"].source
    # Runs that disagree: 'varies', and a note.
    other = {**fields, "test_episodes": P.Value(100, "x")}
    mixed = P.merge_runs("ours", [("a", fields), ("b", other)], "t")
    assert mixed["test_episodes"].value.startswith("varies") and mixed.notes


def copy_published(tmp_path: Path) -> Path:
    pub = tmp_path / "published"
    shutil.copytree(PUBLISHED, pub)
    return pub


def test_a_record_missing_a_field_is_an_error(tmp_path):
    pub = copy_published(tmp_path)
    doc = yaml.safe_load((pub / "protocols.yaml").read_text())
    del doc["sources"]["IRIS"]["fields"]["sticky_actions"]
    (pub / "protocols.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(
        P.ProtocolError, match=r"sources\.IRIS\.fields: missing \['sticky_actions'\]"
    ):
        P.load_protocols(pub)


def test_a_value_without_a_source_is_an_error(tmp_path):
    pub = copy_published(tmp_path)
    doc = yaml.safe_load((pub / "protocols.yaml").read_text())
    doc["sources"]["TWM"]["fields"]["frame_skip"] = {"value": 4, "source": ""}
    (pub / "protocols.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(P.ProtocolError, match="TWM.frame_skip: `source` must say where"):
        P.load_protocols(pub)


def test_a_changed_normalisation_table_is_an_error_and_the_cli_says_so(tmp_path, capsys):
    pub = copy_published(tmp_path)
    human = json.loads((pub / "HUMAN.json").read_text())
    human["Pong"] = [15.0]
    (pub / "HUMAN.json").write_text(json.dumps(human))
    with pytest.raises(P.ProtocolError, match="HUMAN.json: contents differ from the version"):
        P.load_protocols(pub)
    code = cli_main(["paper", "--study", "main", "--published-dir", str(pub), "--out",
                     str(tmp_path / "out"), "--reps-aggregates", "10", "--reps-profiles", "5",
                     "--reps-improvement", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "HUMAN.json: contents differ" in err and "Traceback" not in err


def test_without_protocols_file_every_source_is_unknown_and_said_so(tmp_path):
    pub = copy_published(tmp_path)
    (pub / "protocols.yaml").unlink()
    out = tmp_path / "out"
    run_paper(ResultsConfig(published_dir=str(pub), **SMALL), out, ("main",))
    text = (out / "aggregates.md").read_text()
    assert "no protocols.yaml" in text and "cannot compare (unknown)" in text
