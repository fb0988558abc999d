import gymnasium as gym
import pytest

import rem.envs.atari  # noqa: F401  (registers the ALE ids)
from rem.games import ABLATION_GAMES, ATARI_100K_GAMES, UnknownGameError, check_game, env_id


def test_game_lists():
    assert len(ATARI_100K_GAMES) == 26 == len(set(ATARI_100K_GAMES))
    assert list(ATARI_100K_GAMES) == sorted(ATARI_100K_GAMES)
    assert len(ABLATION_GAMES) == 8 and set(ABLATION_GAMES) <= set(ATARI_100K_GAMES)


def test_every_game_is_registered_with_the_legacy_protocol():
    for game in ATARI_100K_GAMES:
        spec = gym.spec(env_id(game))
        assert spec.kwargs["frameskip"] == 1
        assert spec.kwargs["repeat_action_probability"] == 0.0
        assert spec.kwargs["full_action_space"] is False


def test_check_game():
    assert check_game("Pong") == "Pong"
    assert env_id("Breakout") == "BreakoutNoFrameskip-v4"


@pytest.mark.parametrize(
    "name, suggestion",
    [("pong", "Pong"), ("PongNoFrameskip-v4", "Pong"), ("Breakot", "Breakout"), ("Zork", None)],
)
def test_unknown_game_lists_valid_names(name, suggestion):
    with pytest.raises(UnknownGameError) as err:
        check_game(name)
    message = str(err.value)
    assert repr(name) in message
    assert all(game in message for game in ATARI_100K_GAMES)
    if suggestion:
        assert f"Did you mean {suggestion!r}" in message
    else:
        assert "Did you mean" not in message
    assert isinstance(err.value, ValueError)
