"""Catch, the toy game that ships with the package (rem/envs/catch.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rem.envs.atari import action_meanings, get_env_state, make_env, num_actions, set_env_state
from rem.envs.catch import CELL, GRID, CatchEnv, optimal_action
from rem.games import UnknownGameError, check_game, env_id


def play(env: CatchEnv, policy, episodes: int) -> list[float]:
    returns = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, reward, done, truncated, _ = env.step(policy(env))
            assert not truncated
            total += reward
        returns.append(total)
    return returns


def test_frames_actions_and_episode_length():
    env = make_env("Catch", train=True, seed=0)
    obs, _ = env.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert action_meanings("Catch")[0] == "NOOP" and num_actions("Catch") == 3
    steps, done = 0, False
    while not done:
        obs, reward, done, _, _ = env.step(0)
        steps += 1
        assert reward in (-1.0, 0.0, 1.0)
    assert steps == env.balls * (GRID - 1)
    with pytest.raises(ValueError, match="actions 0..2"):
        env.step(3)


def test_random_scores_clearly_below_optimal():
    rng = np.random.default_rng(0)
    random = play(CatchEnv(seed=1), lambda env: int(rng.integers(3)), 100)
    best = play(CatchEnv(seed=1), optimal_action, 20)
    assert set(best) == {10.0}  # every ball is reachable in the 7 steps it falls
    assert np.mean(random) < -3.5  # a random walk catches about one ball in four


def test_best_action_depends_on_the_frame():
    """The ball's column, read off the frame, decides the action that catches it."""
    env = CatchEnv(seed=0)
    seen = set()
    for _ in range(50):
        obs, _ = env.reset()
        ball = np.argwhere(obs[:CELL, :, 0] == 255)[:, 1].min() // CELL
        paddle = np.argwhere(obs[-CELL:, :, 2] == 255)[:, 1].min() // CELL
        assert (ball, paddle) == (env.ball_col, env.paddle_col)
        seen.add(optimal_action(env))
    assert seen == {0, 1, 2}


def test_seeded_and_state_round_trip():
    a, b = make_env("Catch", train=False, seed=5), make_env("Catch", train=False, seed=5)
    assert np.array_equal(a.reset()[0], b.reset()[0])
    for action in (1, 2, 2, 0):
        a.step(action)
    state = get_env_state(a)
    json.dumps(state)  # plain types only (checkpoints load with weights_only=True)
    c = make_env("Catch", train=False, seed=99)
    c.reset()
    set_env_state(c, state)
    for action in [0, 1, 2] * 30:
        oa, ra, da, _, _ = a.step(action)
        oc, rc, dc, _, _ = c.step(action)
        assert np.array_equal(oa, oc) and ra == rc and da == dc
        if da:
            assert np.array_equal(a.reset()[0], c.reset()[0])


def test_game_name_checks():
    assert check_game("Catch") == "Catch"
    with pytest.raises(UnknownGameError, match="Did you mean 'Catch'"):
        check_game("catch")
    with pytest.raises(UnknownGameError, match="toy game"):
        env_id("Catch")


def test_random_policy_evaluation_cli(tmp_path):
    out = tmp_path / "catch_random.json"
    cmd = [sys.executable, "-m", "rem", "evaluate", "--game", "Catch", "--policy", "random"]
    cmd += ["--episodes", "6", "--envs", "2", "--seed", "0", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    returns = result.get("returns") or result.get("episode_returns")
    assert returns is not None and len(returns) == 6, result.keys()
    assert all(-10 <= r <= 10 for r in returns)


TINY_TOY = [
    "run.epochs=4", "run.checkpoint_every=2", "run.deterministic=true",
    "collection.steps_per_epoch=40", "collection.stop_after_epochs=3",
    "training.tokenizer.steps_per_epoch=4", "training.world_model.start_after_epochs=1",
    "training.world_model.steps_per_epoch=4", "training.world_model.batch_size=4",
    "training.actor_critic.start_after_epochs=2", "training.actor_critic.steps_per_epoch=2",
    "training.actor_critic.batch_size=4", "evaluation.every=2", "evaluation.episodes=2",
    "evaluation.final_episodes=3", "evaluation.num_envs=1",
]  # fmt: skip


def toy_train(run_dir, kill_at: str | None = None) -> subprocess.CompletedProcess:
    import os

    from training_helpers import rem_exe

    env = {k: v for k, v in os.environ.items() if k != "REM_TEST_KILL_AT"}
    if kill_at:
        env["REM_TEST_KILL_AT"] = kill_at
    cmd = [rem_exe(), "train", "--game", "Catch", "--seed", "1", "--run-dir", str(run_dir)]
    return subprocess.run(
        [*cmd, "--preset", "toy", *TINY_TOY], capture_output=True, text=True, env=env, timeout=600
    )


def test_toy_preset_trains_and_resumes_identical_after_a_kill(tmp_path):
    """The whole loop on Catch with the toy preset; killed mid-episode in epoch 3 (after the
    checkpoint of epoch 2, which holds the game in progress), the resumed run ends equal to an
    uninterrupted one."""
    whole = toy_train(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = toy_train(tmp_path / "resumed", kill_at="collect:3@25")
    assert killed.returncode != 0 and not (tmp_path / "resumed" / "COMPLETED").exists()
    resumed = toy_train(tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    scores = [json.loads((tmp_path / r / "scores.json").read_text()) for r in ("whole", "resumed")]
    for s in scores:
        s.pop("eval_seconds", None)
    assert scores[0] == scores[1]
    assert len(scores[0]["returns"]) == 3
