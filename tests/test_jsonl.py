"""metrics.jsonl has one reader and one rule (rem.utils.jsonl): a last line that does not
parse is an unfinished write and is skipped; an earlier bad line is an error naming the
file and the line. The trainer, the learning report and `rem status` all follow it."""

from __future__ import annotations

import json

import pytest

from rem.ops import probe
from rem.results.reports.learning import LearningReportError
from rem.results.reports.learning import read_metrics as learning_read
from rem.runs.files import read_metrics as training_read
from rem.utils.jsonl import JsonlError, read_jsonl

LINES = [
    json.dumps({"epoch": e, "time/epoch": 1.5, "test/return_mean": float(e)}) for e in (1, 2, 3)
]


def _readers(path):
    """Each caller's records of `path`, or the error it raised."""
    out = {}
    for name, read in (("jsonl", read_jsonl), ("training", training_read),
                       ("learning", learning_read),
                       ("status", lambda p: probe.read_tail(p)[0])):  # fmt: skip
        try:
            out[name] = read(path)
        except (JsonlError, LearningReportError) as err:
            out[name] = str(err)
    return out


@pytest.mark.parametrize(
    "tail",
    ["", '{"epoch": 4, "time/ep', '{"epoch": 4, "time/ep\n', "[4]\n", "\n", '{"epoch": 4}\x00'],
)
def test_an_unfinished_last_line_is_skipped_by_every_reader(tmp_path, tail):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(LINES) + "\n" + tail)
    expected = [json.loads(line) for line in LINES]
    assert _readers(path) == dict.fromkeys(("jsonl", "training", "learning", "status"), expected)


@pytest.mark.parametrize("bad", ['{"epoch": 2, "ti', "", "[2]", "null"])
def test_an_earlier_bad_line_is_an_error_naming_file_and_line(tmp_path, bad):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join([LINES[0], bad, LINES[2]]) + "\n")
    got = _readers(path)
    for name, result in got.items():
        assert isinstance(result, str), (name, result)
        assert f"{path}:2: not a JSON object" in result and "repair or delete" in result


def test_status_names_the_line_although_it_reads_only_the_tail(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"epoch": e, "time/epoch": 1.0}) for e in range(1, 61)]
    lines[49] = lines[49][:10]  # line 50 of 60, inside the tail
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JsonlError, match=r"metrics.jsonl:50: "):
        probe.read_tail(path, max_bytes=600)
    # A bad line before the tail is not read at all: the tail alone answers.
    records, more = probe.read_tail(path, max_bytes=200)
    assert more and records[-1]["epoch"] == 60 and all(r["epoch"] > 50 for r in records)


def test_missing_files(tmp_path):
    assert training_read(tmp_path / "metrics.jsonl") == []  # a run that has not logged yet
    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "metrics.jsonl")


def test_the_reproduction_reports_curves_follow_the_same_rule(tmp_path):
    from rem.results.reports.reproduction import read_curves

    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(LINES) + '\n{"epoch": 4, "test/ret')
    curves, note = read_curves(path, tmp_path)
    assert list(curves["test"][0]) == [1, 2, 3] and "unreadable" not in note
    path.write_text("\n".join([LINES[0], "garbage", LINES[2]]) + "\n")
    curves, note = read_curves(path, tmp_path)
    assert curves == {} and note.endswith(
        "metrics.jsonl:2: not a JSON object (only the last line can be unfinished)"
    )
