"""POP and no-POP world models: sizes, POP parallel forward vs sequential oracle, causality,
losses, embeddings, ablations, one optimisation step (tiny sizes, CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rem.config import TokenizerConfig, WorldModelConfig, load_config
from rem.models.agent import build_world_model
from rem.models.imagination import ImaginationEnv
from rem.models.tokenizer import Tokenizer
from rem.models.world_model import POPWorldModel
from rem.models.world_model_nopop import NoPOPWorldModel

A = 3
TINY_WM = WorldModelConfig(
    num_layers=2, num_heads=2, embed_dim=16, ffn_dim=32, dropout=0.0, blocks_per_chunk=3
)
TINY_TOK = TokenizerConfig(
    vocab_size=32,
    embed_dim=16,
    base_channels=8,
    z_channels=16,
    num_downsample_steps=5,  # 2x2 = 4 tokens per frame, 5 per block
    perceptual_loss=False,
)


def tiny(wm_overrides=None, tok_overrides=None, pop=True, seed=0):
    torch.manual_seed(seed)
    wm_cfg = dataclasses.replace(TINY_WM, pop=pop, **(wm_overrides or {}))
    tok_cfg = dataclasses.replace(TINY_TOK, **(tok_overrides or {}))
    tokenizer = Tokenizer(tok_cfg).eval()
    # a codebook at the WM's scale so observation embeddings matter in the tests
    with torch.no_grad():
        tokenizer.embedding.weight.normal_()
    world_model = build_world_model(wm_cfg, tok_cfg, A).eval()
    return tokenizer, world_model


def random_tokens(wm, b=2, t=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, wm.obs_vocab, (b, t, wm.tokens_per_frame), generator=g)
    actions = torch.randint(0, wm.num_actions, (b, t), generator=g)
    return wm.block_tokens(obs, actions)


def random_batch(b=2, t=6, seed=2):
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.rand(b, t, 3, 64, 64, generator=g),
        "actions": torch.randint(0, A, (b, t), generator=g),
        "rewards": torch.randint(-1, 2, (b, t), generator=g).float() * 0.7,
        "ends": torch.randint(0, 2, (b, t), generator=g),
        "mask_padding": torch.ones(b, t, dtype=torch.bool),
    }


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- sizes


def test_parameter_counts_at_paper_size():
    wm_cfg, tok_cfg = WorldModelConfig(), TokenizerConfig()
    counts = {a: n_params(POPWorldModel(wm_cfg, tok_cfg, a)) for a in (4, 18)}
    print(f"POP world model parameters: A=4 {counts[4]:,}, A=18 {counts[18]:,}")
    assert counts == {4: 4_756_997, 18: 4_760_581}
    nopop = NoPOPWorldModel(dataclasses.replace(wm_cfg, pop=False), tok_cfg, 4)
    print(f"no-POP world model parameters: A=4 {n_params(nopop):,}")
    assert n_params(nopop) == 4_756_997 - 65 * 256  # no prediction-token table
    assert n_params(POPWorldModel(wm_cfg, tok_cfg, 4).retnet) == 4_277_760


def test_tokens_per_block_derives_from_tokenizer():
    wm_cfg = WorldModelConfig()
    assert POPWorldModel(wm_cfg, TokenizerConfig(), 4).tokens_per_block == 65
    four = POPWorldModel(wm_cfg, TokenizerConfig(num_downsample_steps=4), 4)
    assert four.tokens_per_block == 17
    assert four.prediction_tokens.num_embeddings == 17


def test_build_world_model_picks_the_variant():
    tok_cfg = TokenizerConfig()
    assert type(build_world_model(WorldModelConfig(), tok_cfg, 4)) is POPWorldModel
    nopop = build_world_model(WorldModelConfig(pop=False), tok_cfg, 4)
    assert type(nopop) is NoPOPWorldModel
    with pytest.raises(ValueError, match="embed_dim"):
        POPWorldModel(WorldModelConfig(), TokenizerConfig(embed_dim=128), 4)


# ----------------------------------------------------------------------------- POP forward


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("blocks_per_chunk", [1, 2, 3, 4, 7, 10])
def test_pop_parallel_forward_equals_sequential_oracle(blocks_per_chunk, dtype, tol):
    """float32 agrees to 1e-5 (float noise); the same models in float64 agree to 1e-12."""
    tokenizer, wm = tiny()
    tokenizer.to(dtype)
    wm.to(dtype)
    tokens = random_tokens(wm)
    oracle = wm.forward_sequential(tokens, tokenizer)
    parallel = wm(tokens, tokenizer, blocks_per_chunk=blocks_per_chunk)
    assert parallel.shape == (2, 7, wm.tokens_per_block, 16) and parallel.dtype == dtype
    torch.testing.assert_close(parallel, oracle, atol=tol, rtol=tol)


@pytest.mark.parametrize(
    "overrides",
    [{"shared_embeddings": False}, {"shared_prediction_token": True}],
)
def test_pop_oracle_equivalence_for_embedding_variants(overrides):
    tokenizer, wm = tiny(overrides)
    tokens = random_tokens(wm, t=5)
    torch.testing.assert_close(
        wm(tokens, tokenizer), wm.forward_sequential(tokens, tokenizer), atol=1e-5, rtol=1e-5
    )


def test_pop_outputs_do_not_depend_on_the_chunking_but_do_on_positions():
    tokenizer, wm = tiny()
    tokens = random_tokens(wm, t=6)
    a = wm(tokens, tokenizer, blocks_per_chunk=2)
    b = wm(tokens, tokenizer, blocks_per_chunk=5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # prediction tokens of different blocks see different states: outputs differ across blocks
    assert not torch.allclose(a[:, 3, 0], a[:, 4, 0], atol=1e-4)


@pytest.mark.parametrize("changed_block", [0, 2, 5])
def test_pop_causality(changed_block):
    tokenizer, wm = tiny()
    tokens = random_tokens(wm, t=7)
    changed = tokens.clone()
    k = wm.tokens_per_frame
    changed[:, changed_block, :k] = (tokens[:, changed_block, :k] + 1) % wm.obs_vocab
    out, out2 = wm(tokens, tokenizer), wm(changed, tokenizer)
    t = changed_block
    # prediction outputs of blocks <= t and real outputs of earlier blocks are unchanged
    torch.testing.assert_close(out[:, : t + 1, :k], out2[:, : t + 1, :k])
    torch.testing.assert_close(out[:, :t, k], out2[:, :t, k])
    # the action-token output of block t and the predictions for block t+1 do change
    assert not torch.allclose(out[:, t, k], out2[:, t, k], atol=1e-5)
    assert not torch.allclose(out[:, t + 1, :k], out2[:, t + 1, :k], atol=1e-5)


# ----------------------------------------------------------------------------- losses


def test_pop_loss_ignores_context_blocks_and_padding():
    tokenizer, wm = tiny()
    batch = random_batch()
    loss, metrics = wm.compute_loss(batch, tokenizer)
    assert set(metrics) == {"loss", "loss_obs", "loss_reward", "loss_end"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["loss"] == pytest.approx(
        metrics["loss_obs"] + metrics["loss_reward"] + metrics["loss_end"], rel=1e-5
    )
    # rewards/ends of the 2 context blocks and of padded steps do not matter
    other = dict(batch, rewards=batch["rewards"].clone(), ends=batch["ends"].clone())
    other["rewards"][:, :2] = 5.0
    other["ends"][:, :2] = 1 - other["ends"][:, :2]
    other["mask_padding"] = batch["mask_padding"].clone()
    other["mask_padding"][:, -1] = False
    other["rewards"][:, -1] = -3.0
    _, m_other = wm.compute_loss(other, tokenizer)
    masked = dict(batch, mask_padding=other["mask_padding"])
    _, m_masked = wm.compute_loss(masked, tokenizer)
    assert m_other == pytest.approx(m_masked, rel=1e-6)
    # ... while a reward after the context does
    later = dict(batch, rewards=batch["rewards"].clone())
    later["rewards"][:, 2] = torch.where(batch["rewards"][:, 2] > 0, -1.0, 1.0)
    _, m_later = wm.compute_loss(later, tokenizer)
    assert m_later["loss_reward"] != pytest.approx(metrics["loss_reward"], rel=1e-6)


def test_pop_loss_matches_hand_computation():
    tokenizer, wm = tiny()
    batch = random_batch(t=4)
    loss, _ = wm.compute_loss(batch, tokenizer, metrics_as_tensors=True)
    obs = wm.encode_observations(batch["observations"], tokenizer)
    out = wm.forward_sequential(wm.block_tokens(obs, batch["actions"]), tokenizer)[:, 2:]
    k = wm.tokens_per_frame
    ce = torch.nn.functional.cross_entropy
    expected = (
        ce(wm.head_obs(out[:, :, :k]).reshape(-1, wm.obs_vocab), obs[:, 2:].reshape(-1))
        + ce(
            wm.head_reward(out[:, :, k]).reshape(-1, 3),
            (batch["rewards"][:, 2:].sign() + 1).long().reshape(-1),
        )
        + ce(wm.head_end(out[:, :, k]).reshape(-1, 2), batch["ends"][:, 2:].reshape(-1))
    )
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_loss_rejects_bad_batches_and_mismatched_tokenizer():
    tokenizer, wm = tiny()
    batch = random_batch(t=2)
    with pytest.raises(ValueError, match="context_length"):
        wm.compute_loss(batch, tokenizer)
    with pytest.raises(KeyError, match="mask_padding"):
        wm.compute_loss({k: v for k, v in random_batch().items() if k != "mask_padding"}, tokenizer)
    other_tok = Tokenizer(dataclasses.replace(TINY_TOK, num_downsample_steps=4))
    with pytest.raises(ValueError, match="tokens per frame"):
        wm.compute_loss(random_batch(), other_tok)


@pytest.mark.parametrize("shared", [True, False])
def test_embedding_gradients(shared):
    tokenizer, wm = tiny({"shared_embeddings": shared})
    wm.train()
    loss, _ = wm.compute_loss(random_batch(), tokenizer)
    loss.backward()
    grad = wm.embedding.weight.grad
    assert tokenizer.embedding.weight.grad is None  # the WM never updates the codebook
    assert grad[wm.obs_vocab : wm.obs_vocab + A].abs().sum() > 0  # action rows train
    obs_rows = grad[: wm.obs_vocab].abs().sum()
    assert (obs_rows > 0) == (not shared)
    assert wm.prediction_tokens.weight.grad[: wm.tokens_per_frame].abs().sum() > 0


def test_shared_embeddings_use_the_codebook():
    tokenizer, wm = tiny()
    tokens = torch.tensor([[0, 5, wm.obs_vocab + 1]])
    emb = wm.embed(tokens, tokenizer)
    torch.testing.assert_close(emb[0, 1], tokenizer.embedding.weight[5])
    torch.testing.assert_close(emb[0, 2], wm.embedding.weight[wm.obs_vocab + 1])
    with pytest.raises(ValueError, match="pass the tokenizer"):
        wm.embed(tokens, None)
    _, separate = tiny({"shared_embeddings": False})
    torch.testing.assert_close(separate.embed(tokens, None)[0, 1], separate.embedding.weight[5])


def test_bf16_autocast_loss_is_finite_and_close():
    tokenizer, wm = tiny()
    batch = random_batch()
    _, ref = wm.compute_loss(batch, tokenizer)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, metrics = wm.compute_loss(batch, tokenizer)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert metrics["loss"] == pytest.approx(ref["loss"], rel=0.05)


# ----------------------------------------------------------------------------- no-POP


def test_nopop_forward_equals_parallel_retnet_and_is_causal():
    tokenizer, wm = tiny(pop=False)
    tokens = random_tokens(wm, t=5)
    out = wm(tokens, tokenizer)
    x = wm.embed(tokens.flatten(1), tokenizer)
    torch.testing.assert_close(out, wm.retnet.forward_parallel(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, wm(tokens, tokenizer, blocks_per_chunk=2), atol=1e-5, rtol=1e-5)
    changed = tokens.clone()
    changed[:, 3, 2] = (tokens[:, 3, 2] + 1) % wm.obs_vocab
    p = 3 * wm.tokens_per_block + 2
    out2 = wm(changed, tokenizer)
    torch.testing.assert_close(out[:, :p], out2[:, :p])
    assert not torch.allclose(out[:, p], out2[:, p])


def test_nopop_loss_matches_next_token_hand_computation():
    tokenizer, wm = tiny(pop=False)
    batch = random_batch(t=4)
    batch["mask_padding"][0, 3] = False
    loss, metrics = wm.compute_loss(batch, tokenizer, metrics_as_tensors=True)
    obs = wm.encode_observations(batch["observations"], tokenizer)
    tokens = wm.block_tokens(obs, batch["actions"])
    out = wm(tokens, tokenizer)
    k, j = wm.tokens_per_frame, wm.tokens_per_block
    logits, targets = [], []
    for b in range(2):
        for t in range(2, 4):
            if not batch["mask_padding"][b, t]:
                continue
            for i in range(k):
                logits.append(wm.head_obs(out[b, t * j + i - 1]))
                targets.append(obs[b, t, i])
    expected = torch.nn.functional.cross_entropy(torch.stack(logits), torch.stack(targets))
    torch.testing.assert_close(metrics["loss_obs"], expected, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("train_action_emb", [True, False])
def test_nopop_backward_and_action_embedding_flag(train_action_emb):
    tokenizer, wm = tiny({"no_pop_train_action_emb": train_action_emb}, pop=False)
    wm.train()
    loss, _ = wm.compute_loss(random_batch(), tokenizer)
    loss.backward()
    grad = wm.embedding.weight.grad
    action_grad = 0.0 if grad is None else grad[wm.obs_vocab :].abs().sum().item()
    assert (action_grad > 0) == train_action_emb
    assert wm.retnet.layers[0].retention.q_proj.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- variants


@pytest.mark.parametrize("variant", ["rem", "no-pop", "separate-wm-embeddings", "4x4-tokenizer"])
def test_variants_build_from_config_and_train(variant):
    tiny_overrides = [
        "world_model.num_layers=1",
        "world_model.embed_dim=16",
        "world_model.num_heads=2",
        "world_model.ffn_dim=32",
        "tokenizer.embed_dim=16",
        "tokenizer.z_channels=16",
        "tokenizer.base_channels=8",
        "tokenizer.vocab_size=32",
        "tokenizer.perceptual_loss=false",
    ]
    cfg = load_config("paper", variant, tiny_overrides)
    tokenizer = Tokenizer(cfg.tokenizer)
    wm = build_world_model(cfg.world_model, cfg.tokenizer, A)
    assert wm.tokens_per_block == cfg.tokenizer.tokens_per_frame + 1
    loss, metrics = wm.compute_loss(random_batch(b=1, t=4), tokenizer)
    loss.backward()
    assert np.isfinite(metrics["loss"])
    env = ImaginationEnv(tokenizer, wm)
    k = cfg.tokenizer.tokens_per_frame
    env.reset(torch.randint(0, 32, (2, 2, k)), torch.zeros(2, dtype=torch.long))
    for step in range(3):
        nxt, rewards, dones = env.step(torch.ones(2, dtype=torch.long), predict_next=step < 2)
    assert nxt is None and rewards.shape == dones.shape == (2,)


def test_4x4_tokenizer_world_model():
    tokenizer, wm = tiny(tok_overrides={"num_downsample_steps": 4})
    assert wm.tokens_per_block == 17
    tokens = random_tokens(wm, t=4)
    torch.testing.assert_close(
        wm(tokens, tokenizer), wm.forward_sequential(tokens, tokenizer), atol=1e-5, rtol=1e-5
    )
    loss, _ = wm.compute_loss(random_batch(t=4), tokenizer)
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------- optimisation


def atari_batch(b=2, t=5, seed=0):
    """Real Pong frames through the project's train env (random policy), as a float WM batch."""
    from rem.envs.atari import make_env

    env = make_env("Pong", train=True, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, ends = [], [], [], []
    for _ in range(b * t):
        frames.append(obs)
        action = int(rng.integers(A))
        obs, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        rewards.append(reward)
        ends.append(int(terminated or truncated))
    env.close()
    frames = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    return {
        "observations": frames.reshape(b, t, 3, 64, 64),
        "actions": torch.tensor(actions).reshape(b, t),
        "rewards": torch.tensor(rewards, dtype=torch.float32).reshape(b, t),
        "ends": torch.tensor(ends).reshape(b, t),
        "mask_padding": torch.ones(b, t, dtype=torch.bool),
    }


@pytest.mark.parametrize("pop", [True, False])
def test_one_optimisation_step_lowers_the_loss_on_real_frames(pop):
    tokenizer, wm = tiny(pop=pop)
    batch = atari_batch()
    opt = torch.optim.AdamW(wm.parameters(), lr=3e-3)
    before, _ = wm.compute_loss(batch, tokenizer)
    wm.train()
    opt.zero_grad()
    loss, _ = wm.compute_loss(batch, tokenizer)
    loss.backward()
    opt.step()
    wm.eval()
    after, _ = wm.compute_loss(batch, tokenizer)
    assert after.item() < before.item()
