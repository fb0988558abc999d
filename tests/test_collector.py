"""The train-time collector (docs/protocol.md#episodes-and-the-replay): continuing episodes, burn-in, checkpoints."""

import io

import numpy as np
import pytest
import torch
from fake_atari import FakeAtari, frame_value

from rem.config import EnvConfig
from rem.data.collector import Collector
from rem.data.replay import Replay
from rem.envs.atari import make_env, wrap_env
from rem.policy import Policy, RandomPolicy


class RecordingPolicy(RandomPolicy):
    def __init__(self, num_actions: int = 4, seed: int = 0) -> None:
        super().__init__(num_actions, seed)
        self.calls: list[tuple] = []

    def reset(self, n):
        self.calls.append(("reset", n))

    def reset_rows(self, done):
        self.calls.append(("reset_rows", done.tolist()))

    def burn_in(self, frames, mask, actions):
        self.calls.append(("burn_in", frames.copy(), mask.copy(), actions.copy()))

    def act(self, obs):
        self.calls.append(("act", obs.copy()))
        return super().act(obs)


def fake_collector(burn_in=20):
    # one no-op at reset (raw frame 1); a life is lost at raw frame 41 = agent step 10
    fake = FakeAtari(lives=3, life_loss_at=(41,))
    env = wrap_env(fake, train=True, seed=0, cfg=EnvConfig(train_noop_max=1))
    return fake, Collector(env, Replay(), burn_in=burn_in)


def test_recording_policy_is_a_policy():
    assert isinstance(RecordingPolicy(), Policy)


def test_unfinished_episodes_continue_across_calls_with_burn_in():
    fake, collector = fake_collector()
    policy = RecordingPolicy()
    stats = collector.collect(policy, 7)
    assert stats.steps == 7 and stats.episodes == 0
    [first] = collector.replay.ids()
    episode = collector.replay[first]
    assert len(episode) == 7 and not episode.ended and not episode.ends.any()
    assert [c[0] for c in policy.calls] == ["reset"] + ["act"] * 7  # a new game: no burn-in
    # stored frames are the frames the policy acted on, in order (raw 1, then pools)
    acted = np.stack([c[1][0] for c in policy.calls if c[0] == "act"])
    assert np.array_equal(episode.observations, acted)
    assert episode.observations[0, 0, 0, 0] == frame_value(1)

    policy.calls.clear()
    stats = collector.collect(policy, 7)
    kinds = [c[0] for c in policy.calls]
    assert kinds[:2] == ["reset", "burn_in"]
    _, frames, mask, actions = policy.calls[1]
    assert frames.shape == (1, 20, 3, 64, 64) and mask.shape == (1, 20)
    assert np.array_equal(actions[0, 13:], episode.actions)
    assert not mask[0, :13].any() and mask[0, 13:].all() and not frames[0, :13].any()
    assert np.array_equal(frames[0, 13:], episode.observations)  # the last stored frames
    # step 10 loses a life: the episode ends, the policy's row is zeroed, a new one starts
    assert kinds.index("reset_rows") == 2 + 3 and policy.calls[5][1] == [True]
    assert stats.episodes == 1 and stats.lengths == [10] and stats.returns == [40.0]
    assert collector.replay.ids() == [first, first + 1]
    finished, current = collector.replay[first], collector.replay[first + 1]
    assert len(finished) == 10 and finished.ended and finished.ends.sum() == 1
    assert len(current) == 4 and not current.ended
    assert collector.total_steps == 14 and collector.total_episodes == 1 and fake.resets == 1


def test_burn_in_takes_the_last_frames_only():
    _, collector = fake_collector(burn_in=3)
    policy = RecordingPolicy()
    collector.collect(policy, 5)
    policy.calls.clear()
    collector.collect(policy, 1)
    _, frames, mask, actions = policy.calls[1]
    assert mask.all() and np.array_equal(frames[0], collector.replay[0].observations[2:5])
    assert np.array_equal(actions[0], collector.replay[0].actions[2:5])


def test_burn_in_left_pads_short_episodes():
    _, collector = fake_collector(burn_in=4)
    policy = RecordingPolicy()
    collector.collect(policy, 2)
    policy.calls.clear()
    collector.collect(policy, 1)
    _, frames, mask, actions = policy.calls[1]
    assert mask[0].tolist() == [False, False, True, True]
    assert (frames[0, :2] == 0).all() and (actions[0, :2] == 0).all()
    assert np.array_equal(actions[0, 2:], collector.replay[0].actions[:2])  # before this call


def test_collect_rejects_bad_arguments():
    _, collector = fake_collector()
    with pytest.raises(ValueError, match="num_steps"):
        collector.collect(RecordingPolicy(), 0)


def run_until(collector, policy, steps):
    collector.collect(policy, steps)
    return [collector.replay[i] for i in collector.replay.ids()]


def test_checkpoint_resume_continues_the_same_game(tmp_path):
    """Breakout (lives): collect, checkpoint, collect; a resumed copy collects the same."""
    replay = Replay()
    collector = Collector(make_env("Breakout", train=True, seed=1), replay, burn_in=4)
    policy = RandomPolicy(4, seed=0)
    collector.collect(policy, 90)
    buffer = io.BytesIO()
    torch.save(collector.state_dict(), buffer)
    replay.save(tmp_path)
    rng_state = dict(policy.rng.bit_generator.state)
    expected = run_until(collector, policy, 90)

    resumed_replay = Replay.load(tmp_path)
    resumed = Collector(make_env("Breakout", train=True, seed=123), resumed_replay, burn_in=4)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    resumed_policy = RandomPolicy(4, seed=0)
    resumed_policy.rng.bit_generator.state = rng_state
    got = run_until(resumed, resumed_policy, 90)
    assert len(got) == len(expected) and resumed.total_steps == collector.total_steps == 180
    for a, b in zip(expected, got):
        assert np.array_equal(a.observations, b.observations)
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.ends, b.ends)


def test_checkpoint_without_env_starts_a_new_game():
    _, collector = fake_collector()
    collector.collect(RecordingPolicy(), 5)
    state = collector.state_dict(include_env=False)
    fake, resumed = fake_collector()
    resumed.replay = collector.replay
    resumed.load_state_dict(state)
    resumed.collect(RecordingPolicy(), 2)
    assert resumed.replay.ids() == [0, 1] and len(resumed.replay[0]) == 5
    assert not resumed.replay[0].ended and fake.resets == 1 and resumed.total_steps == 7
