"""Multi-scale retention: constants, the four computation forms agree, RetNet layer/decoder."""

from __future__ import annotations

import pytest
import torch

from rem.models.retention import (
    MultiScaleRetention,
    apply_rotary,
    block_states,
    decay_gammas,
    retention_chunkwise,
    retention_parallel,
    retention_recurrent,
    rotary_thetas,
)
from rem.models.retnet import RetNetLayer, build_retnet

B, H, D = 2, 3, 8


def _qkv(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, n, D, generator=g) for _ in range(3))
    return q, k, v


def _recurrent_all(q, k, v, gamma, state=None):
    outs, states = [], []
    for i in range(q.shape[2]):
        o, state = retention_recurrent(q[:, :, i], k[:, :, i], v[:, :, i], gamma, state)
        outs.append(o)
        states.append(state)
    return torch.stack(outs, dim=2), states


def _chunked(q, k, v, gamma, sizes, state=None):
    outs, at = [], 0
    for size in sizes:
        sl = slice(at, at + size)
        o, state = retention_chunkwise(q[:, :, sl], k[:, :, sl], v[:, :, sl], gamma, state)
        outs.append(o)
        at += size
    assert at == q.shape[2]
    return torch.cat(outs, dim=2), state


def test_constants_match_spec():
    gamma = decay_gammas(4)
    expected = torch.tensor([0.968750, 0.987598, 0.995078, 0.998047])
    torch.testing.assert_close(gamma, expected, atol=1e-6, rtol=0)
    thetas = rotary_thetas(64)
    assert thetas.shape == (32,)
    torch.testing.assert_close(thetas[0], torch.tensor(1.0))
    torch.testing.assert_close(thetas[-1], torch.tensor(1e-4))
    torch.testing.assert_close(thetas[1], torch.tensor(10000 ** (-1 / 31)))


def test_rotary_rotates_interleaved_pairs():
    x = torch.zeros(1, 1, 1, 4)
    x[..., 0] = 1.0  # pair 0 = 1 + 0i
    out = apply_rotary(x, torch.tensor([2]), torch.tensor([0.5, 0.25]))
    angle = torch.tensor(1.0)  # 2 * 0.5
    torch.testing.assert_close(
        out[0, 0, 0], torch.stack([angle.cos(), angle.sin(), 0 * angle, 0 * angle])
    )


@pytest.mark.parametrize("sizes", [[1] * 11, [3, 3, 3, 2], [5, 6], [11], [4, 1, 6]])
def test_parallel_recurrent_chunkwise_agree(sizes):
    n = sum(sizes)
    q, k, v = _qkv(n)
    gamma = decay_gammas(H)
    parallel = retention_parallel(q, k, v, gamma)
    recurrent, rec_states = _recurrent_all(q, k, v, gamma)
    chunked, state = _chunked(q, k, v, gamma, sizes)
    torch.testing.assert_close(recurrent, parallel, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunked, parallel, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, rec_states[-1], atol=1e-5, rtol=1e-5)


def test_chunkwise_from_nonzero_state_matches_recurrent():
    q, k, v = _qkv(7, seed=1)
    gamma = decay_gammas(H)
    state0 = torch.randn(B, H, D, D)
    recurrent, rec_states = _recurrent_all(q, k, v, gamma, state0)
    chunked, state = _chunked(q, k, v, gamma, [2, 5], state0)
    torch.testing.assert_close(chunked, recurrent, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, rec_states[-1], atol=1e-5, rtol=1e-5)
    # return_state=False gives the same outputs and no state
    o, none = retention_chunkwise(q, k, v, gamma, state0, return_state=False)
    assert none is None
    torch.testing.assert_close(o, recurrent, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("with_state", [False, True])
def test_block_states_equal_recurrent_state_after_each_block(with_state):
    block, blocks = 5, 3
    q, k, v = _qkv(block * blocks, seed=2)
    gamma = decay_gammas(H)
    state0 = torch.randn(B, H, D, D) if with_state else None
    _, rec_states = _recurrent_all(q, k, v, gamma, state0)
    states = block_states(k, v, gamma, state0, block)
    assert states.shape == (B, blocks, H, D, D)
    for t in range(blocks):
        torch.testing.assert_close(
            states[:, t], rec_states[(t + 1) * block - 1], atol=1e-5, rtol=1e-5
        )
    with pytest.raises(ValueError, match="whole number"):
        block_states(k[:, :, :-1], v[:, :, :-1], gamma, None, block)


def _msr(seed=0):
    torch.manual_seed(seed)
    return MultiScaleRetention(embed_dim=H * D, num_heads=H, dropout=0.0).eval()


def test_module_forms_agree_and_positions_are_relative():
    """In float64 (`.double()`), so the forms must agree to 1e-12, not to float32 noise (the
    float32 version of this test needed 1e-5, and 1e-4 for the shifted start)."""
    msr = _msr().double()
    tight = dict(atol=1e-12, rtol=1e-12)
    x = torch.randn(B, 12, H * D, dtype=torch.float64)
    parallel = msr.forward_parallel(x, start=7)
    assert parallel.dtype == torch.float64
    # chunkwise in chunks of 5, 4, 3 at the right absolute offsets
    outs, state, at = [], None, 0
    for size in (5, 4, 3):
        y, state = msr.forward_chunkwise(x[:, at : at + size], start=7 + at, state=state)
        outs.append(y)
        at += size
    assert state.dtype == torch.float64
    torch.testing.assert_close(torch.cat(outs, 1), parallel, **tight)
    # recurrent token by token
    rec, state_r = [], None
    for i in range(12):
        y, state_r = msr.forward_recurrent(x[:, i], 7 + i, state_r)
        rec.append(y)
    torch.testing.assert_close(torch.stack(rec, 1), parallel, **tight)
    # a per-sequence start tensor equals an int start
    per_row = msr.forward_parallel(x, start=torch.tensor([7, 7]))
    torch.testing.assert_close(per_row, parallel, **tight)
    # block-state form: outputs equal, states equal the recurrent states at block ends
    y_blocks, states = msr.forward_block_states(x, block_size=4, start=7)
    torch.testing.assert_close(y_blocks, parallel, **tight)
    torch.testing.assert_close(states[:, -1], state_r, **tight)
    # from an empty state only relative positions matter (rotary, no xPos)
    shifted = msr.forward_parallel(x, start=100)
    torch.testing.assert_close(shifted, parallel, **tight)


def test_module_positions_matter_across_a_state():
    msr = _msr()
    x = torch.randn(B, 6, H * D)
    _, state = msr.forward_chunkwise(x[:, :3], start=0)
    right, _ = msr.forward_chunkwise(x[:, 3:], start=3, state=state)
    wrong, _ = msr.forward_chunkwise(x[:, 3:], start=9, state=state)
    assert not torch.allclose(right, wrong, atol=1e-4)


def test_causality_of_parallel_form():
    msr = _msr()
    x = torch.randn(B, 10, H * D)
    x2 = x.clone()
    x2[:, 6:] += torch.randn(B, 4, H * D)
    y, y2 = msr.forward_parallel(x), msr.forward_parallel(x2)
    torch.testing.assert_close(y[:, :6], y2[:, :6])
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


def test_retnet_layer_parameter_count_and_init():
    layer = RetNetLayer(256, 4, 1024, 0.1)
    assert sum(p.numel() for p in layer.parameters()) == 855_552
    assert layer.retention.q_proj.bias.abs().sum() == 0
    assert layer.norm1.eps == 1e-6
    decoder = build_retnet(256, 4, 1024, 0.1, num_layers=5)
    assert sum(p.numel() for p in decoder.parameters()) == 4_277_760
    # all layers start identical (deep copies), but are distinct parameters
    p0 = decoder.layers[0].retention.q_proj.weight
    p4 = decoder.layers[4].retention.q_proj.weight
    assert torch.equal(p0, p4) and p0 is not p4
    # buffers are constants, not checkpoint state
    assert not any("gamma" in key or "thetas" in key for key in decoder.state_dict())


def test_decoder_forms_agree():
    torch.manual_seed(0)
    decoder = build_retnet(H * D, H, 32, 0.0, num_layers=2).eval()
    x = torch.randn(B, 9, H * D)
    parallel = decoder.forward_parallel(x, start=3)
    y1, states = decoder.forward_chunkwise(x[:, :6], start=3)
    y2, states = decoder.forward_chunkwise(x[:, 6:], start=9, states=states)
    torch.testing.assert_close(torch.cat([y1, y2], 1), parallel, atol=1e-5, rtol=1e-5)
    rec, rstates = [], None
    for i in range(9):
        y, rstates = decoder.forward_recurrent(x[:, i], 3 + i, rstates)
        rec.append(y)
    torch.testing.assert_close(torch.stack(rec, 1), parallel, atol=1e-5, rtol=1e-5)
    yb, bstates = decoder.forward_block_states(x, block_size=3, start=3)
    torch.testing.assert_close(yb, parallel, atol=1e-5, rtol=1e-5)
    for layer_state, rec_state in zip(bstates, rstates):
        torch.testing.assert_close(layer_state[:, -1], rec_state, atol=1e-5, rtol=1e-5)
    for layer_state, chunk_state in zip(bstates, states):
        torch.testing.assert_close(layer_state[:, -1], chunk_state, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_keeps_retention_in_fp32_and_finite():
    torch.manual_seed(0)
    decoder = build_retnet(H * D, H, 32, 0.0, num_layers=2).eval()
    x = torch.randn(B, 200, H * D)
    reference = decoder.forward_parallel(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, states = decoder.forward_chunkwise(x)
    assert torch.isfinite(y).all()
    assert all(s.dtype == torch.float32 for s in states)
    assert (y.float() - reference).abs().max() < 0.2
