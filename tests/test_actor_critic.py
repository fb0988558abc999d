"""Actor-critics (docs/protocol.md#actor-critic): sizes, shapes, state handling, burn-in, losses.

The full imagination rollout (world model + ImaginationEnv) is tested in test_agent.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from rem.config import ActorCriticConfig, TokenizerConfig
from rem.models.actor_critic import LSAC, ImaginationRollout
from rem.models.pixel_actor_critic import PixelActorCritic
from rem.models.returns import lambda_returns
from rem.models.tokenizer import Tokenizer


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def tiny_tokenizer(steps: int = 3) -> Tokenizer:
    torch.manual_seed(0)
    cfg = TokenizerConfig(
        vocab_size=16, embed_dim=8, base_channels=8, z_channels=16,
        num_downsample_steps=steps, perceptual_loss=False,
    )  # fmt: skip
    tok = Tokenizer(cfg).eval()
    tok.embedding.weight.data.normal_()
    return tok


def tiny_lsac(num_actions=3, steps=3, **kw) -> LSAC:
    torch.manual_seed(0)
    cfg = dataclasses.replace(ActorCriticConfig(hidden_dim=16), **kw)
    return LSAC(cfg, num_actions, code_dim=8, token_grid=64 // 2**steps)


@pytest.mark.parametrize(("actions", "expected"), [(4, 4_572_357), (18, 4_586_707)])
def test_lsac_paper_parameter_count(actions, expected):
    assert count(LSAC(ActorCriticConfig(), actions, code_dim=256, token_grid=8)) == expected


def test_pixel_ac_paper_parameter_count():
    assert count(PixelActorCritic(ActorCriticConfig(), 4)) == 3_217_957


@pytest.mark.parametrize(("steps", "dense"), [(3, 4096), (4, 1024)])
def test_lsac_dense_input_derives_from_the_token_grid(steps, dense):
    ac = LSAC(ActorCriticConfig(), 4, code_dim=256, token_grid=64 // 2**steps)
    assert ac.dense[0].in_features == dense
    codes = torch.randn(2, 256, 64 // 2**steps, 64 // 2**steps)
    logits, value, state = ac.obs_step(codes, ac.initial_state(2, "cpu"))
    assert logits.shape == (2, 4) and value.shape == (2,) and state[0].shape == (2, 512)


@pytest.mark.parametrize("kind", ["lsac", "pixel"])
@pytest.mark.parametrize("steps", [3, 4])
def test_act_and_burn_in_shapes(kind, steps):
    tok = tiny_tokenizer(steps)
    ac = (
        tiny_lsac(steps=steps)
        if kind == "lsac"
        else PixelActorCritic(ActorCriticConfig(hidden_dim=16), 3)
    )
    ac.reset(2, "cpu")
    ac.burn_in(torch.rand(2, 3, 3, 64, 64), torch.ones(2, 3, dtype=torch.bool), tok)
    actions = ac.act(torch.rand(2, 3, 64, 64), tok, temperature=1.0)
    assert actions.shape == (2,) and actions.dtype == torch.long
    assert ((actions >= 0) & (actions < 3)).all()
    assert ac.state[0].shape == (2, 16)


def test_reset_rows_and_masked_burn_in():
    tok = tiny_tokenizer()
    ac = tiny_lsac()
    ac.reset(3, "cpu")
    mask = torch.tensor([[False, False], [False, True], [True, True]])
    ac.burn_in(torch.rand(3, 2, 3, 64, 64), mask, tok)
    h = ac.state[0]
    assert (h[0] == 0).all() and (h[1] != 0).any() and (h[2] != 0).any()
    # row 1 saw only its second frame: equal to a fresh burn-in on that frame alone
    frames = torch.rand(3, 2, 3, 64, 64)
    ac.reset(3, "cpu")
    ac.burn_in(frames, mask, tok)
    single = tiny_lsac()
    single.reset(1, "cpu")
    single.burn_in(frames[1:2, 1:], torch.ones(1, 1, dtype=torch.bool), tok)
    torch.testing.assert_close(ac.state[0][1], single.state[0][0])
    ac.reset_rows(torch.tensor([False, False, True]))
    assert (ac.state[0][2] == 0).all() and (ac.state[1][2] == 0).all()
    assert (ac.state[0][1] != 0).any()


# ----------------------------------------------------------------------------- burn-in (5.1)


def spy_steps(ac) -> list[tuple]:
    """Record the actor-critic's LSTM steps: ("obs", mask) and ("act", actions, mask)."""
    calls: list[tuple] = []
    obs_step, action_step = ac.obs_step, ac.action_step

    def obs_spy(x, state, mask=None):
        calls.append(("obs", None if mask is None else mask.clone()))
        return obs_step(x, state, mask)

    def action_spy(actions, state, mask=None):
        calls.append(("act", actions.clone(), None if mask is None else mask.clone()))
        return action_step(actions, state, mask)

    ac.obs_step, ac.action_step = obs_spy, action_spy
    return calls


def burn_in_case(steps: int, t: int = 20, seed: int = 3):
    """frames (3, t, 3, 64, 64), mask (3, t), actions (3, t). Row 0 is real throughout, row 1
    is padding up to frame 16 (so masked at frame 15), row 2 up to frame 4."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(3, t, 3, 64, 64, generator=g)
    mask = torch.ones(3, t, dtype=torch.bool)
    mask[1, :17] = False
    mask[2, :5] = False
    return frames, mask, torch.randint(0, 3, (3, t), generator=g)


def hand_burn_in(ac, tok, frames, mask, actions, action_frames):
    """Observation step per frame, an action step after each frame in `action_frames`."""
    state = ac.initial_state(frames.shape[0], "cpu")
    with torch.no_grad():
        for i in range(frames.shape[1]):
            _, _, state = ac.obs_step(tok.encode(frames[:, i]).z_quantized, state, mask[:, i])
            if i in action_frames:
                state = ac.action_step(actions[:, i], state, mask[:, i])
    return state


def burned(ac, tok, frames, mask, actions):
    ac.reset(frames.shape[0], "cpu")
    ac.burn_in(frames, mask, tok, actions=actions)
    return ac.state


def test_reference_burn_in_feeds_one_action_step_after_frame_15_at_4x4():
    """The reference's condition (i + 1) % tokens_per_frame == 0: 16 tokens per frame and 20
    burn-in frames -> exactly one action step, after frame 15, with that frame's stored
    action and padding mask."""
    tok, (frames, mask, actions) = tiny_tokenizer(4), burn_in_case(4)
    ac = tiny_lsac(steps=4)
    assert ac.cfg.burnin_actions == "reference" and ac.tokens_per_frame == 16
    assert ac.burnin_action_frames(20) == [15]
    calls = spy_steps(ac)
    state = burned(ac, tok, frames, mask, actions)
    assert [c[0] for c in calls] == ["obs"] * 16 + ["act"] + ["obs"] * 4
    _, fed, fed_mask = calls[16]
    assert torch.equal(fed, actions[:, 15]) and torch.equal(fed_mask, mask[:, 15])
    expected = hand_burn_in(ac, tok, frames, mask, actions, {15})
    torch.testing.assert_close(state, expected)
    # masked rows untouched: row 1 (padding at frame 15) ends exactly as without the action
    # step; rows 0 and 2 (real at frame 15) do not
    obs_only = burned(tiny_lsac(steps=4, burnin_actions="never"), tok, frames, mask, actions)
    for h, h_obs in zip(state, obs_only):
        assert torch.equal(h[1], h_obs[1])
        assert not torch.allclose(h[0], h_obs[0]) and not torch.allclose(h[2], h_obs[2])


@pytest.mark.parametrize(
    ("steps", "kw"),
    [(3, {}), (4, {"include_action_inputs": False}), (4, {"burnin_actions": "never"})],
    ids=["8x8", "4x4-no-action-inputs", "4x4-never"],
)
def test_burn_in_without_action_steps(steps, kw):
    """8x8 (64 tokens) with 20 frames never meets the condition; no action inputs, or
    burnin_actions=never: observation steps only."""
    tok, (frames, mask, actions) = tiny_tokenizer(steps), burn_in_case(steps)
    ac = tiny_lsac(steps=steps, **kw)
    assert ac.burnin_action_frames(20) == []
    calls = spy_steps(ac)
    state = burned(ac, tok, frames, mask, actions)
    assert [c[0] for c in calls] == ["obs"] * 20
    torch.testing.assert_close(state, hand_burn_in(ac, tok, frames, mask, actions, set()))


def test_every_frame_burn_in_and_missing_actions():
    tok, (frames, mask, actions) = tiny_tokenizer(4), burn_in_case(4)
    ac = tiny_lsac(steps=4, burnin_actions="every_frame")
    calls = spy_steps(ac)
    state = burned(ac, tok, frames, mask, actions)
    assert [c[0] for c in calls] == ["obs", "act"] * 20
    expected = hand_burn_in(ac, tok, frames, mask, actions, set(range(20)))
    torch.testing.assert_close(state, expected)
    # actions are required only where an action step is fed
    with pytest.raises(ValueError, match="burnin_actions=every_frame"):
        burned(ac, tok, frames, mask, None)
    with pytest.raises(ValueError, match="burnin_actions=reference"):
        burned(tiny_lsac(steps=4), tok, frames, mask, None)
    burned(tiny_lsac(steps=4), tok, frames[:, :15], mask[:, :15], None)  # 15 frames: none
    with pytest.raises(ValueError, match="burnin_actions"):
        tiny_lsac(burnin_actions="sometimes")


def test_act_feeds_an_action_step_unless_disabled():
    tok = tiny_tokenizer()
    obs = torch.rand(2, 3, 64, 64)
    for include, changes in ((True, True), (False, False)):
        ac = tiny_lsac(include_action_inputs=include)
        assert (ac.action_embed is not None) == include
        ac.reset(2, "cpu")
        ac.act(obs, tok, temperature=0.0)
        after_act = ac.state[0]
        _, _, obs_only = ac.obs_step(tok.encode(obs).z_quantized, ac.initial_state(2, "cpu"))
        assert (not torch.allclose(after_act, obs_only[0])) == changes


def test_temperature_zero_is_argmax():
    tok = tiny_tokenizer()
    ac = tiny_lsac()
    obs = torch.rand(4, 3, 64, 64)
    ac.reset(4, "cpu")
    logits, _, _ = ac.obs_step(tok.encode(obs).z_quantized, ac.initial_state(4, "cpu"))
    assert torch.equal(ac.act(obs, tok, temperature=0.0), logits.argmax(-1))


def test_loss_matches_hand_computation():
    torch.manual_seed(0)
    ac = tiny_lsac(num_actions=3)
    b, h = 2, 4
    logits = torch.randn(b, h, 3, requires_grad=True)
    values = torch.randn(b, h, requires_grad=True)
    rollout = ImaginationRollout(
        tokens=torch.zeros(b, h, 64, dtype=torch.long),
        actions=torch.randint(0, 3, (b, h)),
        logits=logits,
        values=values,
        rewards=torch.tensor([[0.0, 1.0, -1.0, 0.0], [1.0, 0.0, 0.0, 1.0]]),
        dones=torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0]]),
    )
    loss, metrics = ac.loss_from_rollout(rollout)
    g = lambda_returns(rollout.rewards, values.detach(), rollout.dones, 0.995, 0.95)[:, :-1]
    dist = Categorical(logits=logits[:, :-1])
    policy = -(dist.log_prob(rollout.actions[:, :-1]) * (g - values[:, :-1].detach())).mean()
    entropy = -0.001 * dist.entropy().mean()
    value = ((values[:, :-1] - g) ** 2).mean()
    torch.testing.assert_close(loss, policy + entropy + value)
    assert metrics["policy_loss"] == pytest.approx(policy.item(), rel=1e-5)
    assert metrics["value_loss"] == pytest.approx(value.item(), rel=1e-5)
    loss.backward()
    assert (logits.grad[:, -1] == 0).all() and (logits.grad[:, :-1] != 0).any()
    assert (values.grad[:, -1] == 0).all()  # last value only bootstraps (no gradient)


def test_bf16_autocast_keeps_lstm_and_heads_fp32():
    tok = tiny_tokenizer()
    ac = tiny_lsac()
    codes = tok.encode(torch.rand(2, 3, 64, 64)).z_quantized
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, value, state = ac.obs_step(codes, ac.initial_state(2, "cpu"))
        state = ac.action_step(torch.tensor([0, 1]), state)
    assert logits.dtype == value.dtype == state[0].dtype == torch.float32
    assert torch.isfinite(logits).all() and torch.isfinite(value).all()


def test_horizon_must_cover_the_context():
    with pytest.raises(ValueError, match="imagination_horizon"):
        LSAC(ActorCriticConfig(imagination_horizon=1), 4, code_dim=8, token_grid=8)
    assert tiny_lsac().effective_horizon == 10 - 2 + 1


def test_context_must_hold_a_frame():
    with pytest.raises(ValueError, match="context_length >= 1"):
        LSAC(ActorCriticConfig(), 4, code_dim=8, token_grid=8, context_length=0)
