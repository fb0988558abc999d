"""Imagination: the world models' imagination primitives reproduce the training forward on the
same tokens (dropout off), and ImaginationEnv's contract (shapes, sampling, reset, modes)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rem.config import TokenizerConfig, WorldModelConfig
from rem.models.agent import build_world_model
from rem.models.imagination import ImaginationEnv
from rem.models.tokenizer import Tokenizer

A = 3
TINY_WM = WorldModelConfig(num_layers=2, num_heads=2, embed_dim=16, ffn_dim=32, dropout=0.0)
TINY_TOK = TokenizerConfig(
    vocab_size=32,
    embed_dim=16,
    base_channels=8,
    z_channels=16,
    num_downsample_steps=5,
    perceptual_loss=False,
)


def tiny(pop=True, seed=0, **wm_overrides):
    torch.manual_seed(seed)
    tokenizer = Tokenizer(TINY_TOK).eval()
    with torch.no_grad():
        tokenizer.embedding.weight.normal_()
    wm_cfg = dataclasses.replace(TINY_WM, pop=pop, **wm_overrides)
    return tokenizer, build_world_model(wm_cfg, TINY_TOK, A).eval()


def real_sequence(wm, b=2, t=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, wm.obs_vocab, (b, t, wm.tokens_per_frame), generator=g)
    actions = torch.randint(0, A, (b, t), generator=g)
    return obs, actions


class TeacherForcing:
    """A `sample` function that records the logits it gets and returns given real tokens."""

    def __init__(self, frame: torch.Tensor) -> None:  # frame (b, K)
        self.frame, self.logits, self.calls = frame, [], 0

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        self.logits.append(logits)
        if logits.dim() == 3:  # POP: the whole frame at once
            return self.frame
        self.calls += 1
        return self.frame[:, self.calls - 1]  # no-POP: one token per call


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("pop", [True, False])
def test_imagination_reproduces_training_outputs(pop, shared):
    tokenizer, wm = tiny(pop=pop, shared_embeddings=shared)
    obs, actions = real_sequence(wm)
    tokens = wm.block_tokens(obs, actions)
    k, j = wm.tokens_per_frame, wm.tokens_per_block
    with torch.no_grad():
        out = wm(tokens, tokenizer)
        if not pop:
            out = out.reshape(2, -1, j, out.shape[-1])
        # training-time logits: POP reads u_{t, 0..K-1}; no-POP reads the output one before
        if pop:
            train_obs = wm.head_obs(out[:, :, :k])
        else:
            flat = out.flatten(1, 2)
            prev = torch.stack([flat[:, t * j - 1 : t * j + k - 1] for t in range(1, 6)], 1)
            train_obs = torch.cat([torch.zeros_like(prev[:, :1]), prev], 1)
            train_obs = wm.head_obs(train_obs)
        train_reward, train_end = wm.head_reward(out[:, :, k]), wm.head_end(out[:, :, k])

        state = wm.imagine_reset(obs[:, :2], actions[:, 0])
        for t in range(1, 6):
            logits_reward, logits_end, state = wm.imagine_act(state, actions[:, t], tokenizer)
            torch.testing.assert_close(logits_reward, train_reward[:, t], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits_end, train_end[:, t], atol=1e-5, rtol=1e-5)
            assert state.position == (t + 1) * j
            if t == 5:
                break
            forcing = TeacherForcing(obs[:, t + 1])
            frame, state = wm.imagine_frame(state, tokenizer, forcing)
            assert torch.equal(frame, obs[:, t + 1])
            logits = forcing.logits[0] if pop else torch.stack(forcing.logits, 1)
            assert logits.shape == (2, k, wm.obs_vocab)
            torch.testing.assert_close(logits, train_obs[:, t + 1], atol=1e-5, rtol=1e-5)


def test_pop_frame_prediction_is_one_pass_and_keeps_the_state():
    tokenizer, wm = tiny()
    obs, actions = real_sequence(wm)
    state = wm.imagine_reset(obs[:, :2], actions[:, 0])
    _, _, state = wm.imagine_act(state, actions[:, 1], tokenizer)
    forcing = TeacherForcing(obs[:, 2])
    _, after = wm.imagine_frame(state, tokenizer, forcing)
    assert len(forcing.logits) == 1
    assert after.position == state.position
    assert all(a is b for a, b in zip(after.states, state.states))  # state discarded
    with pytest.raises(RuntimeError, match="action step"):
        wm.imagine_frame(after, tokenizer, forcing)


def _env(pop=True, seed=0, **kw):
    tokenizer, wm = tiny(pop=pop)
    gen = torch.Generator().manual_seed(seed)
    return ImaginationEnv(tokenizer, wm, generator=gen, **kw), wm


@pytest.mark.parametrize("pop", [True, False])
def test_env_rollout_contract(pop):
    env, wm = _env(pop)
    b, k = 4, wm.tokens_per_frame
    ctx = torch.randint(0, wm.obs_vocab, (b, 2, k))
    env.reset(ctx, torch.zeros(b, dtype=torch.long))
    assert env.position == 0
    for step in range(3):
        nxt, rewards, dones = env.step(torch.randint(0, A, (b,)))
        assert nxt.shape == (b, k) and nxt.dtype == torch.long
        assert ((nxt >= 0) & (nxt < wm.obs_vocab)).all()
        assert rewards.shape == (b,) and rewards.dtype == torch.float32
        assert set(rewards.tolist()) <= {-1.0, 0.0, 1.0}
        assert dones.shape == (b,) and dones.dtype == torch.long
        assert set(dones.tolist()) <= {0, 1}
        assert env.position == (2 + step) * wm.tokens_per_block + (0 if pop else k)
    nxt, rewards, _ = env.step(torch.zeros(b, dtype=torch.long), predict_next=False)
    assert nxt is None and rewards.shape == (b,)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(b, dtype=torch.long))
    # re-anchoring on real frames restarts positions
    env.reset(ctx, torch.ones(b, dtype=torch.long))
    assert env.position == 0
    env.step(torch.zeros(b, dtype=torch.long))


def test_env_is_reproducible_with_a_generator_and_restores_the_mode():
    b = 3
    runs = []
    for _ in range(2):
        env, wm = _env(seed=7)
        wm.train()
        ctx = torch.randint(
            0, wm.obs_vocab, (b, 2, wm.tokens_per_frame), generator=torch.Generator().manual_seed(0)
        )
        env.reset(ctx, torch.zeros(b, dtype=torch.long))
        runs.append([env.step(torch.tensor([0, 1, 2])) for _ in range(3)])
        assert wm.training  # eval inside the env, previous mode restored
    for (n1, r1, d1), (n2, r2, d2) in zip(*runs):
        assert torch.equal(n1, n2) and torch.equal(r1, r2) and torch.equal(d1, d2)


def test_env_argmax_reward_done_and_errors():
    env, wm = _env(sample_reward_done=False)
    b, k = 2, wm.tokens_per_frame
    ctx = torch.randint(0, wm.obs_vocab, (b, 2, k))
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(torch.zeros(b, dtype=torch.long))
    env.reset(ctx, torch.zeros(b, dtype=torch.long))
    state = env._state
    logits_reward, logits_end, _ = wm.imagine_act(
        state, torch.tensor([1, 2]), None if not wm.cfg.shared_embeddings else env.tokenizer
    )
    _, rewards, dones = env.step(torch.tensor([1, 2]))
    assert torch.equal(rewards, (logits_reward.argmax(-1) - 1).float())
    assert torch.equal(dones, logits_end.argmax(-1))
    with pytest.raises(ValueError, match="context_tokens"):
        env.reset(ctx[:, :1], torch.zeros(b, dtype=torch.long))
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.zeros(b + 1, dtype=torch.long))


def test_sampling_follows_the_logits():
    env, _ = _env(seed=3)
    logits = torch.log(torch.tensor([[0.1, 0.9]])).repeat(4000, 1)
    frac = env._sample(logits).float().mean().item()
    assert 0.87 < frac < 0.93
