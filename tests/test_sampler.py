"""Segment sampling invariants (docs/protocol.md#segment-sampling)."""

import numpy as np
import pytest
import torch

from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import SegmentSampler, batch_to_device

LENGTHS = [1, 2, 3, 5, 12, 30]


def tagged_replay(lengths=LENGTHS) -> Replay:
    """Frame pixel (0,0,0) = episode tag + 1 (0 means padding), pixel (0,0,1) = step index."""
    replay = Replay()
    for tag, n in enumerate(lengths):
        obs = np.zeros((n, 3, 8, 8), dtype=np.uint8)
        obs[:, 0, 0, 0] = tag + 1
        obs[:, 0, 0, 1] = np.arange(n)
        ends = np.zeros(n, dtype=np.uint8)
        ends[-1] = 1
        replay.add(Episode(obs, np.arange(n) % 3 + 1, np.ones(n), ends))
    return replay


def make(padding, segment_length, context, batch_size=16, lengths=LENGTHS, seed=0):
    sampler = SegmentSampler(
        tagged_replay(lengths),
        batch_size=batch_size,
        segment_length=segment_length,
        context=context,
        padding=padding,
        rng=np.random.default_rng(seed),
    )
    sampler.rebuild()
    return sampler


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("segment_length, context", [(1, 0), (10, 2), (21, 2), (4, 3)])
def test_segments_are_padded_and_never_cross_episodes(padding, segment_length, context):
    sampler = make(padding, segment_length, context)
    assert len(sampler) == sum(max(0, n - context) for n in LENGTHS)  # short episodes clamp to 0
    for _ in range(10):
        batch = sampler.sample()
        obs, mask = batch["observations"].numpy(), batch["mask_padding"].numpy()
        assert obs.shape == (16, segment_length, 3, 8, 8) and obs.dtype == np.uint8
        assert batch["actions"].dtype == torch.int64 and batch["ends"].dtype == torch.int64
        assert batch["rewards"].dtype == torch.float32 and mask.dtype == bool
        assert (mask.sum(1) > context).all()  # more than `context` real steps
        for row in range(16):
            real = np.flatnonzero(mask[row])
            assert np.array_equal(real, np.arange(real[0], real[-1] + 1))  # one contiguous run
            if padding == "right":
                assert real[0] == 0
            else:
                assert real[-1] == segment_length - 1  # the last step is always real
            tags = obs[row, real, 0, 0, 0]
            steps = obs[row, real, 0, 0, 1].astype(int)
            assert len(set(tags)) == 1  # one episode
            assert np.array_equal(steps, np.arange(steps[0], steps[0] + len(steps)))
            pad = ~mask[row]
            assert not obs[row, pad].any() and not batch["actions"][row, pad].any()
            assert not batch["rewards"][row, pad].any() and not batch["ends"][row, pad].any()
            n = LENGTHS[tags[0] - 1]
            if real[-1] < segment_length - 1 and padding == "right":
                assert steps[-1] == n - 1  # right padding only after the episode's last step
            if real[0] > 0 and padding == "left":
                assert steps[0] == 0  # left padding only before the episode's first step


@pytest.mark.parametrize("padding", ["right", "left"])
def test_one_pass_visits_every_pair_once(padding):
    sampler = make(padding, 10, 2, batch_size=1)
    seen = []
    for _ in range(len(sampler)):
        batch = sampler.sample()
        real = np.flatnonzero(batch["mask_padding"][0].numpy())
        # right: the first real step identifies the pair; left: the last one does
        step = real[0] if padding == "right" else real[-1]
        pixel = batch["observations"][0, step, 0, 0].tolist()
        seen.append((pixel[0], pixel[1]))
    assert len(set(seen)) == len(seen) == len(sampler)


def test_rebuild_snapshots_the_replay():
    sampler = make("right", 3, 2, batch_size=4)
    before = len(sampler)
    sampler.replay.clear()  # evictions between rebuilds do not break the current pass
    sampler.sample()
    assert sampler.rebuild() == 0 and before > 0
    with pytest.raises(RuntimeError, match="rebuild"):
        sampler.sample()


def test_sampling_is_seeded():
    a = make("left", 21, 2, seed=3).sample()["observations"]
    b = make("left", 21, 2, seed=3).sample()["observations"]
    c = make("left", 21, 2, seed=4).sample()["observations"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_arguments():
    with pytest.raises(ValueError, match="must exceed context"):
        make("right", 2, 2)
    with pytest.raises(ValueError, match="padding"):
        make("middle", 3, 2)


def test_batch_to_device_scales_frames():
    batch = make("right", 10, 2).sample()
    moved = batch_to_device(batch, "cpu")
    assert moved["observations"].dtype == torch.float32
    assert torch.allclose(moved["observations"] * 255, batch["observations"].float())
    assert moved["mask_padding"].dtype == torch.bool and moved["actions"].dtype == torch.int64
