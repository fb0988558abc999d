"""Evaluation stops at exactly N episodes; `rem evaluate` writes the scores JSON."""

import json

import numpy as np
import pytest

from rem.cli import main
from rem.evaluation.evaluate import evaluate, quotas
from rem.games import UnknownGameError
from rem.policy import RandomPolicy


def test_quotas_split_exactly_n():
    assert quotas(100, 8) == [13, 13, 13, 13, 12, 12, 12, 12]
    assert quotas(3, 8) == [1, 1, 1]  # never more envs than episodes
    assert all(sum(quotas(n, k)) == n for n in range(1, 30) for k in range(1, 10))


def test_exactly_n_episodes_and_async_equals_sync():
    # Breakout: a random agent's test game lasts ~200 agent steps
    kwargs = dict(game="Breakout", episodes=3, seed=0, num_envs=2, progress=False)
    result = evaluate(policy=RandomPolicy(4, seed=0), keep_trajectories=True, **kwargs)
    assert result.episodes == len(result.returns) == len(result.lengths) == 3  # not 4
    assert result.num_envs == 2 and all(n > 0 for n in result.lengths)
    for ret, length, episode in zip(result.returns, result.lengths, result.trajectories):
        assert len(episode) == length and episode.ended and episode.ends.sum() == 1
        assert episode.total_return == pytest.approx(ret)
        assert episode.observations.shape[1:] == (3, 64, 64)
    in_process = evaluate(policy=RandomPolicy(4, seed=0), asynchronous=False, **kwargs)
    assert in_process.returns == result.returns and in_process.lengths == result.lengths
    assert np.isclose(result.mean_return, np.mean(result.returns))


def test_evaluate_rejects_bad_arguments():
    with pytest.raises(UnknownGameError):
        evaluate("Pacman", RandomPolicy(4, 0), 1, 0)
    with pytest.raises(ValueError, match="episodes"):
        evaluate("Pong", RandomPolicy(6, 0), 0, 0)


def test_cli_writes_the_scores_json(tmp_path, capsys):
    out = tmp_path / "sub" / "breakout.json"
    args = ["evaluate", "--game", "Breakout", "--episodes", "2", "--envs", "1", "--out", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    for key in ("game", "episodes", "returns", "lengths", "mean_return", "seed", "policy"):
        assert key in data
    assert data["game"] == "Breakout" and data["episodes"] == 2 and len(data["returns"]) == 2
    assert data["policy"] == "random" and data["seed"] == 0
    assert data["mean_return"] == pytest.approx(np.mean(data["returns"]))
    assert "Breakout: mean return" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--game", "breakout"], "Did you mean 'Breakout'"),
        (["--game", "Pong", "--episodes", "0"], "--episodes must be >= 1"),
        (["--game", "Pong", "--envs", "0"], "--envs must be >= 1"),
        (["--episodes", "3"], "--game is required"),
    ],
)
def test_cli_errors_are_clear(args, message, capsys, tmp_path):
    assert main(["evaluate", *args, "--out", str(tmp_path / "x.json")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_cli_out_must_be_a_file(tmp_path, capsys):
    assert main(["evaluate", "--game", "Pong", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
