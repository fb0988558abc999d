"""The whole agent: every variant builds from config and trains on REAL Atari frames.

A module fixture plays Breakout (ale-py, our train env wrappers, 64x64) with random actions,
stores the lives as episodes in a `Replay` and samples batches with `SegmentSampler`, i.e.
exactly the data path of training.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rem.config import load_config
from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import SegmentSampler, batch_to_device
from rem.envs.atari import make_env, num_actions
from rem.evaluation.agent_policy import AgentPolicy
from rem.models.actor_critic import LSAC, ImaginationRollout
from rem.models.agent import Agent, build_agent
from rem.models.lpips import LPIPS
from rem.models.optim import build_optimizers
from rem.models.pixel_actor_critic import PixelActorCritic
from rem.models.returns import lambda_returns
from rem.models.vgg import VGG16Features
from rem.models.world_model import POPWorldModel
from rem.models.world_model_nopop import NoPOPWorldModel

VARIANTS = [
    "rem",
    "no-pop",
    "separate-wm-embeddings",
    "4x4-tokenizer",
    "no-latent-ac",
    "no-action-input",
]
GAME = "Breakout"


@pytest.fixture(scope="module")
def replay() -> Replay:
    """~160 steps of real Breakout (random policy, FIRE-heavy so the ball moves)."""
    env = make_env(GAME, train=True, seed=0)
    rng = np.random.default_rng(0)
    replay = Replay()
    obs, _ = env.reset(seed=0)
    frames, actions, rewards, ends = [], [], [], []
    while replay.num_steps + len(frames) < 160:
        action = int(rng.choice(num_actions(GAME), p=[0.1, 0.5, 0.2, 0.2]))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        frames.append(np.transpose(obs, (2, 0, 1)))
        actions.append(action)
        rewards.append(reward)
        ends.append(int(terminated or truncated))
        obs = next_obs
        if terminated or truncated or len(frames) == 60:
            replay.add(
                Episode(np.stack(frames), np.array(actions), np.array(rewards), np.array(ends))
            )
            frames, actions, rewards, ends = [], [], [], []
            if terminated or truncated:
                obs, _ = env.reset()
    env.close()
    return replay


def batches(cfg, replay: Replay) -> dict[str, dict[str, torch.Tensor]]:
    """Tokenizer, world-model and actor-critic batches shaped as in training."""
    t, ctx = cfg.training, cfg.world_model.context_length
    specs = {
        "tokenizer": dict(batch_size=t.tokenizer.batch_size, segment_length=1, context=0),
        "world_model": dict(
            batch_size=t.world_model.batch_size,
            segment_length=cfg.world_model.max_blocks,
            context=ctx,
        ),
        "actor_critic": dict(
            batch_size=t.actor_critic.batch_size,
            segment_length=cfg.actor_critic.burn_in + 1,
            context=ctx,
            padding="left",
        ),
    }
    out = {}
    for name, kw in specs.items():
        sampler = SegmentSampler(replay, rng=np.random.default_rng(1), **kw)
        sampler.rebuild()
        out[name] = batch_to_device(sampler.sample(), "cpu")
    return out


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_real_frames_are_atari(replay):
    frames = np.concatenate([e.observations for e in replay.episodes()])
    assert frames.shape[1:] == (3, 64, 64) and frames.dtype == np.uint8
    assert frames.std() > 10  # a real game screen, not a blank frame


@pytest.mark.parametrize(
    ("variant", "tok", "wm", "ac", "wm_cls", "ac_cls"),
    [
        ("rem", 3_189_667, 4_756_997, 4_572_357, POPWorldModel, LSAC),
        ("no-pop", 3_189_667, None, 4_572_357, NoPOPWorldModel, LSAC),
        ("separate-wm-embeddings", 3_189_667, 4_756_997, 4_572_357, POPWorldModel, LSAC),
        ("4x4-tokenizer", 7_339_043, None, None, POPWorldModel, LSAC),
        ("no-latent-ac", 3_189_667, 4_756_997, 3_217_957, POPWorldModel, PixelActorCritic),
        ("no-action-input", 3_189_667, 4_756_997, 4_572_357 - 4 * 512, POPWorldModel, LSAC),
    ],
)
def test_paper_sizes_per_variant(variant, tok, wm, ac, wm_cls, ac_cls):
    cfg = load_config("paper", variant, ["tokenizer.perceptual_loss=false"])
    agent = build_agent(cfg, num_actions=4)
    assert isinstance(agent.world_model, wm_cls) and isinstance(agent.actor_critic, ac_cls)
    assert count(agent.tokenizer) == tok
    if wm is not None:
        assert count(agent.world_model) == wm
    if ac is not None:
        assert count(agent.actor_critic) == ac
    if variant == "4x4-tokenizer":  # sizes derive from the tokenizer, never set by hand
        assert agent.world_model.tokens_per_block == 17
        assert agent.actor_critic.dense[0].in_features == 1024


def test_paper_world_model_and_lsac_at_18_actions():
    agent = build_agent(load_config("paper", None, ["tokenizer.perceptual_loss=false"]), 18)
    assert count(agent.world_model) == 4_760_581
    assert count(agent.actor_critic) == 4_586_707


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_and_imagines(variant, replay):
    """Forward + backward of all three losses and an imagination rollout (quick preset)."""
    torch.manual_seed(0)
    cfg = load_config("quick", variant)
    agent = build_agent(cfg, num_actions(GAME))
    data = batches(cfg, replay)
    k = cfg.tokenizer.tokens_per_frame

    for name in ("tokenizer", "world_model"):
        module = getattr(agent, name)
        loss, metrics = (
            module.compute_loss(data[name])
            if name == "tokenizer"
            else module.compute_loss(data[name], agent.tokenizer)
        )
        assert torch.isfinite(loss) and np.isfinite(list(metrics.values())).all()
        loss.backward()
        assert all(p.grad is not None for p in module.parameters() if p.requires_grad), name
    agent.zero_grad(set_to_none=True)

    agent.tokenizer.eval()
    agent.world_model.eval()
    rollout = agent.actor_critic.imagine(data["actor_critic"], agent.tokenizer, agent.world_model)
    b, h = cfg.training.actor_critic.batch_size, agent.actor_critic.effective_horizon
    assert h == cfg.actor_critic.imagination_horizon - cfg.world_model.context_length + 1
    assert rollout.tokens.shape == (b, h, k)
    assert rollout.logits.shape == (b, h, num_actions(GAME))
    assert rollout.values.shape == rollout.rewards.shape == rollout.dones.shape == (b, h)
    assert set(rollout.rewards.unique().tolist()) <= {-1.0, 0.0, 1.0}
    # step 0 acts on the last real frame
    with torch.no_grad():
        last = agent.tokenizer.encode(data["actor_critic"]["observations"][:, -1]).tokens
    assert torch.equal(rollout.tokens[:, 0], last)

    loss, metrics = agent.actor_critic.loss_from_rollout(rollout)
    assert torch.isfinite(loss)
    loss.backward()
    ac_grads = [p.grad for p in agent.actor_critic.parameters()]
    assert all(g is not None for g in ac_grads)
    # no gradient into the world model or the tokenizer
    assert all(p.grad is None for p in agent.world_model.parameters())
    assert all(p.grad is None for p in agent.tokenizer.parameters())
    # BPTT: the first step's trunk input affects later values through the LSTM
    assert agent.actor_critic.lstm.weight_hh.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", ["rem", "no-pop", "no-latent-ac"])
def test_float64_agent_trains_imagines_and_acts(variant, replay):
    """`.double()` runs every model in float64 on the float32 frames the samplers give: the
    tokenizer (LPIPS included), the POP / no-POP world model and the latent / pixel
    actor-critic each run a loss and a backward; the actor-critic an imagination rollout
    (world-model imagination steps) and a burn-in + act."""
    torch.manual_seed(0)
    cfg = load_config("quick", variant, ["tokenizer.perceptual_loss=true"])
    stand_in = LPIPS(VGG16Features((2, 2, 2, 2, 2)))
    agent = build_agent(cfg, num_actions(GAME), perceptual=stand_in).double()
    data = batches(cfg, replay)
    assert data["tokenizer"]["observations"].dtype == torch.float32
    tok, wm, ac = agent.tokenizer, agent.world_model, agent.actor_critic
    tok_loss, _ = tok.compute_loss(data["tokenizer"])
    wm_loss, _ = wm.compute_loss(data["world_model"], tok)
    assert tok_loss.dtype == wm_loss.dtype == torch.float64
    (tok_loss + wm_loss).backward()
    for module in (tok, wm):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert all(g is not None and g.dtype == torch.float64 for g in grads)
        assert all(torch.isfinite(g).all() for g in grads)
    agent.zero_grad(set_to_none=True)

    tok.eval()
    wm.eval()
    rollout = ac.imagine(data["actor_critic"], tok, wm)
    assert rollout.logits.dtype == rollout.values.dtype == torch.float64
    assert rollout.tokens.shape[1] == ac.effective_horizon  # world-model steps ran
    ac_loss, _ = ac.loss_from_rollout(rollout)
    assert ac_loss.dtype == torch.float64 and torch.isfinite(ac_loss)
    ac_loss.backward()
    assert all(p.grad.dtype == torch.float64 for p in ac.parameters())

    policy = AgentPolicy(agent, temperature=1.0, epsilon=0.0, device="cpu")
    frames = (data["actor_critic"]["observations"][:2] * 255).to(torch.uint8).numpy()
    policy.reset(2)
    policy.burn_in(frames[:, :-1], np.ones((2, frames.shape[1] - 1), bool), np.zeros((2, 4), int))
    assert ac.state[0].dtype == torch.float64
    assert policy.act(frames[:, -1]).shape == (2,)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def step_lowers_loss(compute, module: nn.Module, optimizer, max_norm: float) -> tuple[float, float]:
    torch.manual_seed(123)
    loss, _ = compute()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(module.parameters(), max_norm)
    optimizer.step()
    torch.manual_seed(123)  # same dropout masks / imagination samples as before the step
    with torch.no_grad():
        after, _ = compute()
    return loss.item(), after.item()


def test_one_optimisation_step_lowers_each_loss_on_a_real_batch(replay):
    torch.manual_seed(0)
    cfg = load_config("quick")
    agent = build_agent(cfg, num_actions(GAME))
    data = batches(cfg, replay)
    # The paper's optimiser settings (the quick preset's larger rates are for short runs: a
    # first Adam step is a sign step of size lr on every weight and may overshoot).
    cfg.training = load_config("paper").training
    opt = build_optimizers(agent, cfg)
    t = cfg.training

    before, after = step_lowers_loss(
        lambda: agent.tokenizer.compute_loss(data["tokenizer"]),
        agent.tokenizer,
        opt.tokenizer,
        t.tokenizer.max_grad_norm,
    )
    assert after < before, ("tokenizer", before, after)
    agent.tokenizer.eval()

    before, after = step_lowers_loss(
        lambda: agent.world_model.compute_loss(data["world_model"], agent.tokenizer),
        agent.world_model,
        opt.world_model,
        t.world_model.max_grad_norm,
    )
    assert after < before, ("world_model", before, after)
    agent.world_model.eval()

    # Actor-critic: the loss is a surrogate whose targets (lambda-returns, baseline) are
    # constants of the sampled rollout, so "its loss on that batch" is that surrogate on the
    # same imagined trajectory (same seed -> same world-model samples) with targets held fixed.
    ac = agent.actor_critic
    rollout = ac.imagine(
        data["actor_critic"], agent.tokenizer, agent.world_model, generator=seeded(123)
    )
    loss, _ = ac.loss_from_rollout(rollout)
    returns = lambda_returns(rollout.rewards, rollout.values, rollout.dones, 0.995, 0.95)[:, :-1]
    baseline = rollout.values[:, :-1].detach()

    def surrogate(r: ImaginationRollout) -> float:
        logp = torch.log_softmax(r.logits[:, :-1], -1)
        chosen = logp.gather(-1, r.actions[:, :-1, None]).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1).mean()
        value = ((r.values[:, :-1] - returns) ** 2).mean()
        return (-(chosen * (returns - baseline)).mean() - 0.001 * entropy + value).item()

    assert surrogate(rollout) == pytest.approx(loss.item(), rel=1e-6)
    opt.actor_critic.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(ac.parameters(), t.actor_critic.max_grad_norm)
    opt.actor_critic.step()
    with torch.no_grad():  # the same trajectory: same actions, same world-model draws
        again = ac.imagine(
            data["actor_critic"],
            agent.tokenizer,
            agent.world_model,
            actions=rollout.actions,
            generator=seeded(123),
        )
    assert torch.equal(again.tokens, rollout.tokens) and torch.equal(again.rewards, rollout.rewards)
    assert surrogate(again) < loss.item(), ("actor_critic", loss.item(), surrogate(again))


def test_optimiser_groups_follow_the_spec():
    cfg = load_config("quick", None, ["tokenizer.perceptual_loss=true"])
    stand_in = LPIPS(VGG16Features((2, 2, 2, 2, 2)))
    agent = build_agent(cfg, 4, perceptual=stand_in)
    assert agent.tokenizer.perceptual is stand_in
    opt = build_optimizers(agent, cfg)

    (tok_group,) = opt.tokenizer.param_groups
    ids = {id(p) for p in tok_group["params"]}
    assert tok_group["weight_decay"] == 0.01 and tok_group["lr"] == cfg.training.tokenizer.lr
    assert id(agent.tokenizer.embedding.weight) in ids  # codebook decayed too, as the reference
    assert not ids & {id(p) for p in stand_in.parameters()}  # frozen LPIPS excluded
    assert len(ids) == sum(1 for p in agent.tokenizer.parameters() if p.requires_grad)

    decay, no_decay = opt.world_model.param_groups
    assert decay["lr"] == no_decay["lr"] == cfg.training.world_model.lr
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    linear_weights = {id(m.weight) for m in agent.world_model.modules() if isinstance(m, nn.Linear)}
    assert {id(p) for p in decay["params"]} == linear_weights
    no_decay_ids = {id(p) for p in no_decay["params"]}
    for name, p in agent.world_model.named_parameters():
        if (
            "embedding" in name
            or "prediction_tokens" in name
            or name.endswith("bias")
            or "norm" in name
        ):
            assert id(p) in no_decay_ids, name
    assert len(linear_weights) + len(no_decay_ids) == len(list(agent.world_model.parameters()))

    (ac_group,) = opt.actor_critic.param_groups
    assert ac_group["weight_decay"] == 0.01 and len(ac_group["params"]) == len(
        list(agent.actor_critic.parameters())
    )


def test_bf16_autocast_keeps_losses_finite(replay):
    torch.manual_seed(0)
    cfg = load_config("quick")
    agent: Agent = build_agent(cfg, num_actions(GAME))
    # two rows per batch: bf16 is emulated (slow) on CPU; the code path is what matters
    data = {name: {k: v[:2] for k, v in b.items()} for name, b in batches(cfg, replay).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tok_loss, _ = agent.tokenizer.compute_loss(data["tokenizer"])
        wm_loss, _ = agent.world_model.compute_loss(data["world_model"], agent.tokenizer)
        ac_loss, _ = agent.actor_critic.compute_loss(
            data["actor_critic"], agent.tokenizer, agent.world_model
        )
    for loss in (tok_loss, wm_loss, ac_loss):
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    (tok_loss + wm_loss + ac_loss).backward()


def test_imagination_replays_recorded_actions(replay):
    torch.manual_seed(0)
    cfg = load_config("quick")
    agent = build_agent(cfg, num_actions(GAME))
    batch = batches(cfg, replay)["actor_critic"]
    ac, tok, wm = agent.actor_critic, agent.tokenizer, agent.world_model
    with torch.no_grad():
        first = ac.imagine(batch, tok, wm, generator=seeded(7))
        again = ac.imagine(batch, tok, wm, actions=first.actions, generator=seeded(7))
        other = ac.imagine(batch, tok, wm, actions=first.actions, generator=seeded(8))
    for name in ("tokens", "actions", "rewards", "dones", "values", "logits"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.tokens, other.tokens)  # the generator drives the world model
    with pytest.raises(ValueError, match="actions to replay"):
        ac.imagine(batch, tok, wm, actions=first.actions[:, :2])


def test_paper_optimiser_settings():
    cfg = load_config("quick")
    cfg.training = load_config("paper").training
    opt = build_optimizers(build_agent(cfg, 4), cfg)
    for optimizer, lr in ((opt.tokenizer, 1e-4), (opt.world_model, 2e-4), (opt.actor_critic, 1e-4)):
        for group in optimizer.param_groups:
            assert group["lr"] == lr and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert [g["weight_decay"] for g in opt.world_model.param_groups] == [0.05, 0.0]
    state = opt.state_dict()
    opt.load_state_dict(state)  # round trip for checkpoints
    assert set(state) == {"tokenizer", "world_model", "actor_critic"}
