"""The Atari protocol (docs/protocol.md#environment): fake env for the rare edges, real games for the rest."""

import gymnasium as gym
import numpy as np
import pytest
from fake_atari import FakeAtari, frame_value

from rem.config import EnvConfig
from rem.envs.atari import (
    NoopReset,
    action_meanings,
    get_env_state,
    make_env,
    num_actions,
    raw_frame,
    set_env_state,
    wrap_env,
)
from rem.envs.vector import env_seeds, make_vector_env


def fake_stack(train: bool, seed: int = 0, cfg: EnvConfig | None = None, **fake_kwargs):
    fake = FakeAtari(**fake_kwargs)
    return fake, wrap_env(fake, train=train, seed=seed, cfg=cfg)


def constant(obs: np.ndarray) -> int:
    """The single value of a constant frame (resizing a constant frame keeps it constant)."""
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert (obs == obs.flat[0]).all()
    return int(obs.flat[0])


# ------------------------------------------------------------------ fake env: rare edges


def test_noop_reset_bounds_and_seeding():
    counts = []
    fake = FakeAtari()
    env = NoopReset(gym.wrappers.TimeLimit(fake, 10_000), noop_max=30, seed=0)
    for _ in range(300):
        _, info = env.reset()
        assert fake.frame == info["noops"] and set(fake.actions) == {0}
        counts.append(info["noops"])
    assert min(counts) == 1 and max(counts) == 30
    # the ALE is seeded on the first reset only, then continues its own stream
    assert isinstance(fake.reset_seeds[0], int) and set(fake.reset_seeds[1:]) == {None}

    def noops(seed):
        e = NoopReset(FakeAtari(), noop_max=30, seed=seed)
        return [e.reset()[1]["noops"] for _ in range(20)]

    assert noops(1) == noops(1) != noops(2)
    with pytest.raises(ValueError, match="noop_max"):
        NoopReset(FakeAtari(), noop_max=0, seed=0)


def test_test_env_takes_exactly_one_noop():
    fake, env = fake_stack(train=False)
    for _ in range(20):
        obs, _ = env.reset()
        assert fake.frame == 1 and fake.actions == [0]
        assert constant(obs) == frame_value(1)


def test_frame_skip_sums_rewards_and_max_pools_last_two_frames():
    fake, env = fake_stack(train=False)
    env.reset()
    obs, reward, terminated, truncated, _ = env.step(2)
    assert fake.frame == 5 and fake.actions[1:] == [2, 2, 2, 2]
    assert reward == 4.0 and not terminated and not truncated
    assert constant(obs) == max(frame_value(4), frame_value(5))
    assert raw_frame(env).shape == (210, 160, 3) and raw_frame(env)[0, 0, 0] == frame_value(5)


@pytest.mark.parametrize("end, reward, pooled", [(7, 2.0, (6, 7)), (6, 1.0, (6,))])
def test_termination_inside_a_frame_skip(end, reward, pooled):
    fake, env = fake_stack(train=False, terminate_at=end)
    env.reset()
    env.step(1)  # raw frames 2..5
    obs, r, terminated, truncated, _ = env.step(1)
    assert terminated and not truncated and r == reward and fake.frame == end
    assert constant(obs) == max(frame_value(k) for k in pooled)


def test_life_loss_ends_train_episodes_with_a_pseudo_reset():
    fake, env = fake_stack(train=True, lives=3)
    env.reset()
    start = fake.frame
    fake.life_loss_at = {start + 6}  # inside the second agent step
    assert env.step(0)[2] is False
    _, reward, terminated, truncated, info = env.step(3)
    # the frame skip is not cut short by a lost life
    assert terminated and not truncated and info["life_loss"] and reward == 4.0
    obs, info = env.reset()
    assert info["pseudo_reset"] and fake.resets == 1
    assert fake.frame == start + 12 and fake.actions[-4:] == [0, 0, 0, 0]
    assert constant(obs) == max(frame_value(start + 11), frame_value(start + 12))


def test_life_loss_does_not_end_test_episodes():
    fake, env = fake_stack(train=False, lives=3)
    env.reset()
    fake.life_loss_at = {3, 7}
    for _ in range(3):
        assert env.step(0)[2] is False
    assert fake.lives == 1


def test_losing_the_last_life_is_a_real_game_over():
    fake, env = fake_stack(train=True, lives=1)
    env.reset()
    fake.life_loss_at = {fake.frame + 2}
    _, _, terminated, _, info = env.step(0)
    assert terminated and not info["life_loss"]
    _, info = env.reset()
    assert not info["pseudo_reset"] and fake.resets == 2 and fake.lives == 1


def test_pseudo_reset_that_ends_the_game_resets_for_real():
    fake, env = fake_stack(train=True, lives=3)
    env.reset()
    start = fake.frame
    fake.life_loss_at, fake.terminate_at = {start + 2}, start + 6
    assert env.step(0)[2] is True
    _, info = env.reset()
    assert not info["pseudo_reset"] and fake.resets == 2


def test_time_limit_counts_raw_frames_per_game_not_per_life():
    cfg = EnvConfig(train_max_raw_frames=10, train_noop_max=1)
    fake, env = fake_stack(train=True, cfg=cfg, lives=3, life_loss_at=(3,))
    env.reset()  # raw frame 1 (the no-op)
    assert env.step(0)[2] is True  # life lost at raw frame 3, step ends at 5
    env.reset()  # pseudo-reset: raw frames 6..9
    _, reward, terminated, truncated, _ = env.step(0)
    assert truncated and not terminated and reward == 1.0 and fake.frame == 10
    env.reset()
    assert fake.resets == 2  # a truncated game is over: real reset


# ------------------------------------------------------------------ real games


def test_real_game_spaces_and_actions():
    assert num_actions("Pong") == 6 and num_actions("Breakout") == 4
    assert action_meanings("Breakout") == ("NOOP", "FIRE", "RIGHT", "LEFT")
    env = make_env("Pong", train=False, seed=0)
    obs, info = env.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.shape == (64, 64, 3) and env.action_space.n == 6
    assert info["noops"] == 1 and info["lives"] == 0  # Pong has no lives
    assert raw_frame(env).shape == (210, 160, 3)


def rollout(env, actions):
    frames = [env.reset()[0]]
    events = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        frames.append(obs)
        events.append((reward, terminated, truncated, info.get("life_loss", False), info["lives"]))
        if terminated or truncated:
            obs, info = env.reset()
            frames.append(obs)
            events.append(("reset", info.get("pseudo_reset")))
    return np.stack(frames), events


def test_same_seed_same_frames_on_a_real_game():
    actions = np.random.default_rng(0).integers(0, 6, 300)
    a_frames, a_events = rollout(make_env("Pong", train=True, seed=3), actions)
    b_frames, b_events = rollout(make_env("Pong", train=True, seed=3), actions)
    assert np.array_equal(a_frames, b_frames) and a_events == b_events
    noops = {make_env("Breakout", train=True, seed=s).reset()[1]["noops"] for s in range(6)}
    assert len(noops) > 1  # different seeds, different no-op starts


def test_breakout_life_loss_train_vs_test():
    actions = np.random.default_rng(1).integers(0, 4, 400)
    _, train_events = rollout(make_env("Breakout", train=True, seed=0), actions)
    life_losses = [i for i, e in enumerate(train_events) if e[0] != "reset" and e[3]]
    assert life_losses, "a random agent loses a Breakout life within 400 steps"
    i = life_losses[0]
    assert train_events[i][1] is True and train_events[i][4] > 0
    assert train_events[i + 1] == ("reset", True)  # pseudo-reset
    _, test_events = rollout(make_env("Breakout", train=False, seed=0), actions)
    lives = [e[4] for e in test_events if e[0] != "reset"]
    ends = [e for e in test_events if e[0] != "reset" and (e[1] or e[2])]
    assert min(lives) < 5  # lives were lost...
    assert all(e[4] == 0 for e in ends)  # ...but only game over ended a test episode


def test_env_state_round_trip_continues_the_same_game():
    actions = np.random.default_rng(2).integers(0, 4, 400)
    env = make_env("Breakout", train=True, seed=5)
    rollout(env, actions[:200])
    state = get_env_state(env)
    expected = [env.step(a)[:4] for a in actions[200:260]]
    other = make_env("Breakout", train=True, seed=99)
    other.reset()
    set_env_state(other, state)
    got = [other.step(a)[:4] for a in actions[200:260]]
    assert all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(expected, got))
    with pytest.raises(ValueError, match="train env"):
        test_env = make_env("Breakout", train=False, seed=5)
        test_env.reset()
        set_env_state(test_env, state)


def test_vector_env_runs_seeded_test_envs_in_subprocesses():
    venv = make_vector_env("Pong", 2, seed=7)
    try:
        obs, _ = venv.reset()
        assert obs.shape == (2, 64, 64, 3) and obs.dtype == np.uint8
        for i, s in enumerate(env_seeds(7, 2)):
            assert np.array_equal(obs[i], make_env("Pong", train=False, seed=s).reset()[0])
    finally:
        venv.close()
