"""Actor-critics (spec 5.1, 5.2, 5.4): sizes, shapes, state handling, burn-in, losses.

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


def burned_state(ac, tok, frames, actions):
    ac.reset(2, "cpu")
    ac.burn_in(frames, torch.ones(2, 3, dtype=torch.bool), tok, actions=actions)
    return ac.state[0].clone()


def test_burn_in_is_observation_only_by_default():
    tok = tiny_tokenizer()
    frames = torch.rand(2, 3, 3, 64, 64)
    ac = tiny_lsac()
    a = burned_state(ac, tok, frames, torch.zeros(2, 3, dtype=torch.long))
    b = burned_state(ac, tok, frames, torch.full((2, 3), 2))
    torch.testing.assert_close(a, b)  # actions ignored (reference quirk)
    fed = tiny_lsac(burnin_feed_actions=True)
    a = burned_state(fed, tok, frames, torch.zeros(2, 3, dtype=torch.long))
    b = burned_state(fed, tok, frames, torch.full((2, 3), 2))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="burnin_feed_actions"):
        burned_state(fed, tok, frames, None)


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


def test_context_must_be_two_frames():
    with pytest.raises(ValueError, match="context_length must be 2"):
        LSAC(ActorCriticConfig(), 4, code_dim=8, token_grid=8, context_length=3)
