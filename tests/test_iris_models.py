"""IRIS's networks (rem.models.iris): the GPT's KV cache, imagination against teacher forcing,
the tokenizer's shapes and loss, optimiser groups, and parameter counts equal to IRIS's own
code at its default config (tiny sizes elsewhere, CPU, seconds)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rem.models.imagination import ImaginationEnv
from rem.models.iris import (
    GPT,
    IrisTokenizer,
    IrisTokenizerConfig,
    IrisWorldModel,
    IrisWorldModelConfig,
    iris_param_groups,
    iris_parameter_counts,
)
from rem.models.lpips import LPIPS
from rem.models.vgg import VGG16Features

A = 3
TINY_WM = IrisWorldModelConfig(num_layers=2, num_heads=2, embed_dim=16, max_blocks=6)
TINY_TOK = IrisTokenizerConfig(
    vocab_size=32,
    embed_dim=8,
    z_channels=32,
    channels=32,
    num_res_blocks=1,
    perceptual_loss=False,
)  # 5 levels: 4x4 = 16 tokens per frame, attention at 16 and 8 as IRIS
# for the world-model tests, which only need tokens: no residual or attention blocks
FAST_TOK = dataclasses.replace(TINY_TOK, num_res_blocks=0)


def tiny_wm(seed: int = 0, **overrides) -> IrisWorldModel:
    torch.manual_seed(seed)
    cfg = dataclasses.replace(TINY_WM, **overrides)
    return IrisWorldModel(cfg, TINY_TOK, A).eval()


def random_blocks(wm: IrisWorldModel, b: int = 2, t: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, wm.obs_vocab, (b, t, wm.tokens_per_frame), generator=g)
    actions = torch.randint(0, A, (b, t), generator=g)
    return obs, actions


# ----------------------------------------------------------------------------- GPT + KV cache


@pytest.mark.parametrize("pieces", [(1,) * 12, (5, 1, 1, 5), (12,), (3, 9)])
def test_gpt_parallel_forward_equals_kv_cached_incremental(pieces):
    torch.manual_seed(0)
    gpt = GPT(TINY_WM, tokens_per_block=4).eval()
    x = torch.randn(2, sum(pieces), TINY_WM.embed_dim)
    full = gpt(x)
    cache, outs, start = gpt.empty_cache(), [], 0
    for n in pieces:
        outs.append(gpt(x[:, start : start + n], cache))
        start += n
    assert cache.size == x.shape[1]
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-5, atol=1e-5)


def test_gpt_is_causal_and_cache_overflow_is_an_error():
    torch.manual_seed(0)
    gpt = GPT(TINY_WM, tokens_per_block=4).eval()
    x = torch.randn(1, 10, TINY_WM.embed_dim)
    y = x.clone()
    y[:, 6:] = torch.randn(1, 4, TINY_WM.embed_dim)
    torch.testing.assert_close(gpt(x)[:, :6], gpt(y)[:, :6])
    assert not torch.allclose(gpt(x)[:, 6:], gpt(y)[:, 6:])
    cache = gpt.empty_cache()
    gpt(torch.randn(1, gpt.max_tokens, TINY_WM.embed_dim), cache)
    with pytest.raises(ValueError, match="KV cache holds"):
        gpt(x[:, :1], cache)


def test_block_causal_attention_sees_its_own_block():
    torch.manual_seed(0)
    gpt = GPT(dataclasses.replace(TINY_WM, attention="block_causal"), tokens_per_block=4).eval()
    x = torch.randn(1, 8, TINY_WM.embed_dim)
    y = x.clone()
    y[:, 3] = torch.randn(TINY_WM.embed_dim)  # last token of block 0
    changed = (gpt(x) - gpt(y)).abs().amax(-1)[0]
    assert (changed[:3] > 0).all()  # earlier tokens of the same block see it
    assert not torch.allclose(gpt(x)[:, 4:], gpt(y)[:, 4:])


# ----------------------------------------------------------------------------- world model


def test_world_model_stream_in_pieces_equals_teacher_forcing():
    wm = tiny_wm()
    obs, actions = random_blocks(wm, t=4)
    tokens = wm.block_tokens(obs, actions)
    full = wm(tokens)  # (b, t*j, E)
    flat = tokens.flatten(1)
    cache = wm.transformer.empty_cache()
    parts = [wm.stream(flat[:, :17], cache), wm.stream(flat[:, 17:18], cache)]
    parts.append(wm.stream(flat[:, 18:], cache))
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


def _roll_true_tokens(wm, obs, actions):
    """Imagination primitives fed the true frames -> reward, end, next-frame logits per step."""
    k = wm.tokens_per_frame
    state = wm.imagine_reset(obs[:, :1], None)
    rewards, ends, frames = [], [], []
    for s in range(obs.shape[1]):
        r, e, state = wm.imagine_act(state, actions[:, s])
        rewards.append(r)
        ends.append(e)
        if s + 1 == obs.shape[1]:
            break
        seen, queue = [], list(obs[:, s + 1].unbind(1))

        def replay(logits, seen=seen, queue=queue):
            seen.append(logits)
            return queue.pop(0)

        tokens, state = wm.imagine_frame(state, None, replay)
        assert torch.equal(tokens, obs[:, s + 1])
        frames.append(torch.stack(seen, 1))
    assert len(frames[0][0]) == k
    return torch.stack(rewards, 1), torch.stack(ends, 1), torch.stack(frames, 1)


def test_imagination_fed_the_true_tokens_reproduces_teacher_forced_logits():
    wm = tiny_wm()
    obs, actions = random_blocks(wm, t=wm.cfg.max_blocks)  # fills the position table exactly
    k = wm.tokens_per_frame
    logits_obs, logits_reward, logits_end = wm.logits(wm.block_tokens(obs, actions))
    rewards, ends, frames = _roll_true_tokens(wm, obs, actions)
    torch.testing.assert_close(rewards, logits_reward, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ends, logits_end, rtol=1e-5, atol=1e-5)
    # logits_obs[:, p - 1] predicts observation token p of the segment; frames 1.. start at K
    expected = logits_obs[:, k - 1 :].unflatten(1, (obs.shape[1] - 1, k))
    torch.testing.assert_close(frames, expected, rtol=1e-5, atol=1e-5)


def test_imagination_two_frame_context_matches_teacher_forcing():
    wm = tiny_wm()
    obs, actions = random_blocks(wm, t=3)
    logits_obs, logits_reward, _ = wm.logits(wm.block_tokens(obs, actions))
    state = wm.imagine_reset(obs[:, :2], actions[:, 0])
    r, _, state = wm.imagine_act(state, actions[:, 1])
    torch.testing.assert_close(r, logits_reward[:, 1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        state.next_logits, logits_obs[:, 2 * wm.tokens_per_frame - 1], rtol=1e-5, atol=1e-5
    )


def test_cache_refresh_restarts_from_the_current_frame_as_iris():
    """Past the position table, the next frame is predicted from [current frame, action] at
    positions 0.. (IRIS's refresh_keys_values_with_initial_obs_tokens)."""
    wm = tiny_wm(max_blocks=2)
    k = wm.tokens_per_frame
    obs, actions = random_blocks(wm, t=3)
    state = wm.imagine_reset(obs[:, :1], None)
    for s in range(2):
        _, _, state = wm.imagine_act(state, actions[:, s])
        queue = list(obs[:, s + 1].unbind(1))
        seen = []
        wm.imagine_frame(state, None, lambda lg, q=queue, seen=seen: seen.append(lg) or q.pop(0))
    # step 2 needed 1 + K more positions than the table has: the last frame was generated
    # from [frame 1, a_1] alone, positions 0..
    restarted = wm.block_tokens(obs[:, 1:3], actions[:, 1:3])
    expected = wm.logits(restarted)[0][:, k - 1 :]
    torch.testing.assert_close(torch.stack(seen, 1), expected, rtol=1e-5, atol=1e-5)
    assert state.position == 2 * k + 1


def test_imagination_env_drives_the_iris_world_model():
    wm = tiny_wm()
    tokenizer = IrisTokenizer(FAST_TOK).eval()
    obs, actions = random_blocks(wm, t=1)
    env = ImaginationEnv(tokenizer, wm, generator=torch.Generator().manual_seed(0))
    env.reset(obs[:, :1], None)
    horizon = wm.cfg.max_blocks
    for step in range(horizon):
        last = step == horizon - 1
        next_tokens, rewards, dones = env.step(actions[:, 0], predict_next=not last)
        assert rewards.shape == dones.shape == (2,)
        assert set(rewards.tolist()) <= {-1.0, 0.0, 1.0}
        if not last:
            assert next_tokens.shape == (2, wm.tokens_per_frame)
            assert next_tokens.max() < wm.obs_vocab
    # K context tokens, then 1 + K per step but the last (1): the table exactly, no refresh
    assert env.position == horizon * wm.tokens_per_block == wm.max_tokens


def _wm_batch(wm, b=2, t=4, seed=3):
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.rand(b, t, 3, 64, 64, generator=g),
        "actions": torch.randint(0, A, (b, t), generator=g),
        "rewards": torch.randint(-1, 2, (b, t), generator=g).float() * 0.5,
        "ends": torch.zeros(b, t, dtype=torch.long),
        "mask_padding": torch.ones(b, t, dtype=torch.bool),
    }


def test_world_model_loss_ignores_padding_and_trains():
    wm = tiny_wm()
    tokenizer = IrisTokenizer(FAST_TOK).eval()
    batch = _wm_batch(wm, t=3)
    batch["mask_padding"][0, 2:] = False
    loss, metrics = wm.compute_loss(batch, tokenizer)
    assert set(metrics) == {"loss", "loss_obs", "loss_reward", "loss_end"}
    assert metrics["loss"] == pytest.approx(
        metrics["loss_obs"] + metrics["loss_reward"] + metrics["loss_end"], rel=1e-5
    )
    other = dict(batch, rewards=batch["rewards"].clone(), actions=batch["actions"].clone())
    other["rewards"][0, 2:] = 1.0
    other["observations"] = batch["observations"].clone()
    other["observations"][0, 2:] = 0.0
    assert wm.compute_loss(other, tokenizer)[1]["loss"] == pytest.approx(metrics["loss"], rel=1e-6)
    wm.train()
    opt = torch.optim.AdamW(iris_param_groups(wm, 0.01), lr=3e-3)
    first = None
    for _ in range(10):
        loss, m = wm.compute_loss(batch, tokenizer)
        first = first if first is not None else m["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m["loss"] < first - 0.2


def test_world_model_rejects_segments_longer_than_the_position_table():
    wm = tiny_wm()
    with pytest.raises(ValueError, match="max_blocks"):
        wm.compute_loss(_wm_batch(wm, t=wm.cfg.max_blocks + 1), IrisTokenizer(FAST_TOK))


# ----------------------------------------------------------------------------- tokenizer


def test_tokenizer_encodes_and_decodes_at_the_right_shapes():
    torch.manual_seed(0)
    tokenizer = IrisTokenizer(TINY_TOK).eval()
    x = torch.rand(3, 3, 64, 64)
    enc = tokenizer.encode(x)
    assert tokenizer.tokens_per_frame == 16 and tokenizer.grid == 4
    assert enc.tokens.shape == (3, 16) and enc.tokens.dtype == torch.long
    assert enc.z.shape == enc.z_quantized.shape == (3, TINY_TOK.embed_dim, 4, 4)
    torch.testing.assert_close(tokenizer.codes_from_tokens(enc.tokens), enc.z_quantized)
    frames = tokenizer.decode(enc.z_quantized)
    assert frames.shape == (3, 3, 64, 64)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    with pytest.raises(ValueError, match="64, 64"):
        tokenizer.encode(torch.rand(1, 3, 32, 32))


def test_tokenizer_norm_groups_allow_narrow_widths_and_are_checked():
    """IRIS's GroupNorm has 32 groups; `norm_groups` lets a CPU preset go narrower."""
    narrow = dataclasses.replace(TINY_TOK, channels=8, norm_groups=8)
    tokenizer = IrisTokenizer(narrow).eval()
    norms = [m for m in tokenizer.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == 8 for m in norms)
    assert tokenizer.encode(torch.rand(2, 3, 64, 64)).tokens.shape == (2, 16)
    with pytest.raises(ValueError, match="multiples of it, got 8"):
        dataclasses.replace(TINY_TOK, channels=8)  # 32 groups do not divide 8 channels


def test_tokenizer_loss_is_finite_and_decreases():
    torch.manual_seed(0)
    lpips = LPIPS(VGG16Features(widths=(4, 4, 8, 8, 8)))
    tokenizer = IrisTokenizer(dataclasses.replace(TINY_TOK, perceptual_loss=True), lpips)
    batch = {
        "observations": torch.rand(2, 1, 3, 64, 64),
        "mask_padding": torch.ones(2, 1, dtype=bool),
    }
    opt = torch.optim.Adam([p for p in tokenizer.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(6):
        loss, metrics = tokenizer.compute_loss(batch)
        assert set(metrics) == {"commitment_loss", "reconstruction_loss", "perceptual_loss", "loss"}
        assert torch.isfinite(loss)
        history.append(metrics["loss"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert history[-1] < history[0]


def test_tokenizer_requires_lpips_when_the_perceptual_loss_is_on():
    with pytest.raises(ValueError, match="no LPIPS module"):
        IrisTokenizer(dataclasses.replace(TINY_TOK, perceptual_loss=True))


# ----------------------------------------------------------------------------- optimiser groups


def test_param_groups_decay_linear_weights_only():
    wm = tiny_wm()
    decay, no_decay = iris_param_groups(wm, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    linear = {id(m.weight) for m in wm.modules() if isinstance(m, torch.nn.Linear)}
    assert {id(p) for p in decay["params"]} == linear
    ids = {id(p) for p in no_decay["params"]}
    for table in (wm.pos_emb, wm.obs_emb, wm.act_emb, wm.transformer.ln_f):
        assert id(table.weight) in ids
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(wm.parameters()))


def test_param_groups_reject_an_unknown_layer_type():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="neither weight-decay group"):
        iris_param_groups(module, 0.01)


# ----------------------------------------------------------------------------- parameter counts

# IRIS's own code (eloialonso/iris at 24326aaaa283c527f42b89b44cfdecf2665a7a16), built by hand
# at config/tokenizer/default.yaml, config/world_model/default.yaml and ActorCritic(A):
# Tokenizer(512, 512, Encoder(cfg), Decoder(cfg), with_lpips=False), WorldModel(512, A,
# TransformerConfig(17, 20, "causal", 10, 4, 256, 0.1, 0.1, 0.1)), counted with
# sum(p.numel() for p in module.parameters()). (IRIS's own printout of the tokenizer adds
# the frozen LPIPS network.)
IRIS_COUNTS = {
    18: {
        "tokenizer": 4_027_523,
        "tokenizer.encoder": 1_418_240,
        "tokenizer.decoder": 1_821_827,
        "world_model": 8_451_077,
        "world_model.transformer": 7_898_112,
        "actor_critic": 3_225_139,
    },
    4: {
        "tokenizer": 4_027_523,
        "tokenizer.encoder": 1_418_240,
        "tokenizer.decoder": 1_821_827,
        "world_model": 8_447_493,
        "world_model.transformer": 7_898_112,
        "actor_critic": 3_217_957,
    },
}


@pytest.mark.parametrize("num_actions", sorted(IRIS_COUNTS))
def test_parameter_counts_equal_iris_own_code(num_actions):
    ours = iris_parameter_counts(num_actions)
    for name, expected in IRIS_COUNTS[num_actions].items():
        assert ours[name] == expected, name
    assert ours["total"] == ours["tokenizer"] + ours["world_model"] + ours["actor_critic"]
