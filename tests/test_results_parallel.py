"""`python -m rem.results parallel`: commands forked after one shared import write the same
files as when each runs alone, each its own log; a failure is named with its log."""

from __future__ import annotations

from rem.results.commands import main as cli_main
from rem.results.parallel import split_commands

PLAN = ["plan-seeds", "--runs", "3", "--delta", "0.1", "--seed-plan-reps", "300"]


def test_split_commands():
    assert split_commands(["paper", "--study", "main", ":::", "plan-seeds"]) == [
        ["paper", "--study", "main"],
        ["plan-seeds"],
    ]
    # A flag with no values before the separator stays empty, as in the workflow's rule.
    assert split_commands(["paper", "--baselines-extra", ":::", "x"]) == [
        ["paper", "--baselines-extra"],
        ["x"],
    ]


def test_forked_commands_write_what_they_write_alone(tmp_path, capsys):
    alone, forked = tmp_path / "alone", tmp_path / "forked"
    assert cli_main([*PLAN, "--out", str(alone / "a")]) == 0
    assert cli_main([*PLAN, "--seed", "1", "--out", str(alone / "b")]) == 0
    logs = [tmp_path / "logs" / "a.log", tmp_path / "logs" / "b.log"]
    code = cli_main(["parallel", "--logs", *map(str, logs), "--",
                     *PLAN, "--out", str(forked / "a"), ":::",
                     *PLAN, "--seed", "1", "--out", str(forked / "b")])  # fmt: skip
    assert code == 0
    for run in ("a", "b"):
        names = sorted(p.name for p in (alone / run).iterdir())
        assert names == sorted(p.name for p in (forked / run).iterdir())
        for name in names:
            assert (alone / run / name).read_bytes() == (forked / run / name).read_bytes(), name
    assert "| 26 games | 3 |" in logs[0].read_text()  # each command's output is in its log
    assert "rem.results plan-seeds: 4 files in" in logs[1].read_text()
    capsys.readouterr()


def test_a_failed_command_is_named_with_its_log(tmp_path, capsys):
    logs = [tmp_path / "ok.log", tmp_path / "bad.log"]
    code = cli_main(["parallel", "--logs", *map(str, logs), "--",
                     *PLAN, "--out", str(tmp_path / "ok"), ":::",
                     "plan-seeds", "--algorithm", "Nope", "--out", str(tmp_path / "bad")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert f"`plan-seeds --algorithm Nope --out {tmp_path / 'bad'}` failed (exit 2); see" in err
    assert "no published runs; choose one of" in logs[1].read_text()
    assert (tmp_path / "ok" / "seed_plan.csv").is_file()


def test_one_log_per_command(tmp_path, capsys):
    code = cli_main(["parallel", "--logs", str(tmp_path / "a.log"), "--", *PLAN, ":::", *PLAN])
    assert code == 2
    assert "1 log file(s) for 2 command(s)" in capsys.readouterr().err
