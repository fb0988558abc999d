"""Actor-critic burn-in as the reference runs it (docs/protocol.md#burn-in), in every place a
burn-in runs: actor-critic training (`imagine`), collection (Collector -> AgentPolicy), and the
`actor_critic.burnin_actions` setting with its replaced predecessor.

The step schedule itself (one action step after frame 15 at 4x4, none at 8x8) is tested in
test_actor_critic.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_actor_critic import hand_burn_in, spy_steps

from rem.cli import main as rem_main
from rem.config import (
    ActorCriticConfig,
    ConfigError,
    TokenizerConfig,
    WorldModelConfig,
    config_from_dict,
    load_config,
)
from rem.data.collector import Collector
from rem.data.replay import Replay
from rem.envs.atari import make_env
from rem.evaluation.agent_policy import AgentPolicy
from rem.models.actor_critic import LSAC
from rem.models.agent import Agent, build_world_model
from rem.models.tokenizer import Tokenizer

A = 4


def tiny_agent(steps: int = 4, **ac_kw) -> Agent:
    """Tokenizer with 2**(6 - steps) squared tokens per frame, 1-layer POP world model, LSAC."""
    torch.manual_seed(0)
    tok_cfg = TokenizerConfig(
        vocab_size=16, embed_dim=8, base_channels=8, z_channels=16,
        num_downsample_steps=steps, perceptual_loss=False,
    )  # fmt: skip
    wm_cfg = WorldModelConfig(
        num_layers=1, num_heads=2, embed_dim=8, ffn_dim=16, dropout=0.0, max_blocks=6,
        blocks_per_chunk=2,
    )  # fmt: skip
    tokenizer = Tokenizer(tok_cfg)
    with torch.no_grad():
        tokenizer.embedding.weight.normal_()
    ac_cfg = dataclasses.replace(ActorCriticConfig(hidden_dim=16, imagination_horizon=4), **ac_kw)
    ac = LSAC(ac_cfg, A, code_dim=8, token_grid=64 // 2**steps)
    return Agent(tokenizer, build_world_model(wm_cfg, tok_cfg, A), ac).eval()


def segment_batch(b: int = 3, s: int = 21, seed: int = 4) -> dict[str, torch.Tensor]:
    """Left-padded segments as the actor-critic sampler builds them: row 0 real throughout,
    row 1 padding up to frame 16 (masked at burn-in frame 15), row 2 up to frame 4."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[1, :17] = False
    mask[2, :5] = False
    return {
        "observations": torch.rand(b, s, 3, 64, 64, generator=g),
        "actions": torch.randint(0, A, (b, s), generator=g),
        "mask_padding": mask,
    }


def reference_reset(ac: LSAC, *, action_grad: bool = True):
    """The reference's `ActorCriticLS.reset` mechanics, re-created on our modules: the state
    is updated in place on the real rows (`h[m], c[m] = lstm(...)`), observation steps under
    `no_grad`, an action step when (i + 1) % tokens_per_obs == 0, outside `no_grad`.
    Drop-in for `ac._burn_in`."""

    def burn_in(inputs, mask, state, actions):
        h, c = (s.clone() for s in state)
        for i in range(inputs.shape[1]):
            m = mask[:, i]
            if m.any():
                with torch.no_grad():
                    h[m], c[m] = ac.lstm(ac.trunk(inputs[:, i][m]), (h[m], c[m]))
            if (i + 1) % ac.tokens_per_frame == 0 and ac.include_action_inputs:
                with torch.set_grad_enabled(action_grad):
                    h[m], c[m] = ac.lstm(ac.action_embed(actions[:, i][m]), (h[m], c[m]))
        return h, c

    return burn_in


def ac_loss_and_grads(agent: Agent, batch, burn_in=None):
    """One actor-critic training step's loss and gradients (fixed policy and WM samples)."""
    ac = agent.actor_critic
    ac.zero_grad(set_to_none=True)
    if burn_in is not None:
        ac._burn_in = burn_in
    torch.manual_seed(5)
    rollout = ac.imagine(
        batch, agent.tokenizer, agent.world_model, generator=torch.Generator().manual_seed(6)
    )
    loss, _ = ac.loss_from_rollout(rollout)
    loss.backward()
    if burn_in is not None:
        del ac._burn_in
    grads = {name: p.grad.clone() for name, p in ac.named_parameters()}
    return loss.detach(), rollout, grads


def test_training_burn_in_matches_the_reference_mechanics_gradients_included():
    """4x4, 20 burn-in frames, float64: our imagination loss and every actor-critic gradient
    equal those with the reference's in-place burn-in (1e-12). The reference's action step
    after frame 15 carries gradient (it sits outside its no_grad) and the later no-grad
    observation steps keep the state's autograd history: the gradient reaches the action
    embedding and the LSTM through that step. Dropping that path changes the gradients."""
    agent = tiny_agent(4).double()
    batch = segment_batch()
    ours_loss, ours_rollout, ours = ac_loss_and_grads(agent, batch)
    ref_loss, ref_rollout, ref = ac_loss_and_grads(
        agent, batch, reference_reset(agent.actor_critic)
    )
    assert torch.equal(ours_rollout.actions, ref_rollout.actions)
    torch.testing.assert_close(ours_rollout.logits, ref_rollout.logits, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours_loss, ref_loss, atol=1e-12, rtol=1e-12)
    for name in ref:
        torch.testing.assert_close(ours[name], ref[name], atol=1e-12, rtol=1e-12, msg=name)
    # the test can tell: without the action step's gradient path the LSTM's input weights
    # (and the action embedding) get other gradients
    _, _, no_path = ac_loss_and_grads(
        agent, batch, reference_reset(agent.actor_critic, action_grad=False)
    )
    assert not torch.allclose(no_path["lstm.weight_ih"], ref["lstm.weight_ih"], atol=1e-9)
    assert not torch.allclose(no_path["action_embed.weight"], ref["action_embed.weight"])


@pytest.mark.parametrize("mode", ["never", "every_frame"])
def test_other_burn_in_modes_carry_no_gradient(mode):
    """never / every_frame: the state after burn-in is a constant for the loss."""
    agent = tiny_agent(4, burnin_actions=mode)
    batch = segment_batch()
    ac = agent.actor_critic
    with torch.no_grad():
        inputs = rearrange_codes(agent, batch)
    state = ac._burn_in(
        inputs[:, :-1], batch["mask_padding"][:, :-1], ac.initial_state(3, "cpu"), batch["actions"]
    )
    assert not state[0].requires_grad and not state[1].requires_grad
    reference = tiny_agent(4).actor_critic
    state = reference._burn_in(
        inputs[:, :-1],
        batch["mask_padding"][:, :-1],
        reference.initial_state(3, "cpu"),
        batch["actions"],
    )
    assert state[0].requires_grad  # only "reference" keeps the reference's gradient path


def rearrange_codes(agent: Agent, batch) -> torch.Tensor:
    """observations (b, s, 3, 64, 64) -> codebook maps (b, s, e, h, w)."""
    obs = batch["observations"]
    codes = agent.tokenizer.encode(obs.flatten(0, 1)).z_quantized
    return codes.unflatten(0, obs.shape[:2])


def test_training_burn_in_state_at_4x4_and_8x8():
    """The imagination's first policy step acts from the reference burn-in state: one action
    step after frame 15 at 4x4, none at 8x8."""
    cases = [(4, {15}, ["obs"] * 16 + ["act"] + ["obs"] * 4), (3, set(), ["obs"] * 20)]
    for steps, action_frames, burn_in_kinds in cases:
        agent = tiny_agent(steps)
        ac, tok = agent.actor_critic, agent.tokenizer
        batch = segment_batch()
        calls = spy_steps(ac)
        with torch.no_grad():
            rollout = ac.imagine(batch, tok, agent.world_model)
        # burn-in, then the imagination's own obs/action steps
        assert [c[0] for c in calls][: len(burn_in_kinds) + 1] == burn_in_kinds + ["obs"]
        obs, actions, mask = batch["observations"], batch["actions"], batch["mask_padding"]
        state = hand_burn_in(ac, tok, obs[:, :-1], mask[:, :-1], actions, action_frames)
        with torch.no_grad():
            logits, _, _ = ac.obs_step(tok.encode(obs[:, -1]).z_quantized, state)
        torch.testing.assert_close(rollout.logits[:, 0], logits)


def test_collection_burns_in_like_the_reference_on_real_frames():
    """Collector -> AgentPolicy.burn_in -> LSAC at 4x4 with 20 burn-in frames on Breakout:
    the burn-in of a continuing episode feeds the stored action of frame 15."""
    agent = tiny_agent(4)
    ac, tok = agent.actor_critic, agent.tokenizer
    policy = AgentPolicy(agent, temperature=1.0, epsilon=0.0, device="cpu")
    env = make_env("Breakout", train=True, seed=0)
    collector = Collector(env, Replay(), burn_in=20)
    collector.collect(policy, 24)
    seen = []
    burn_in = policy.burn_in

    def record(frames, mask, actions):
        calls = spy_steps(ac)
        burn_in(frames, mask, actions)
        del ac.obs_step, ac.action_step
        seen.append((frames, mask, actions, [c[0] for c in calls], ac.state))

    policy.burn_in = record
    collector.collect(policy, 1)
    env.close()
    [(frames, mask, actions, kinds, state)] = seen
    assert frames.shape == (1, 20, 3, 64, 64) and mask.all()  # 24 steps, no life lost
    assert kinds == ["obs"] * 16 + ["act"] + ["obs"] * 4
    obs = torch.tensor(frames, dtype=torch.float32) / 255.0
    expected = hand_burn_in(ac, tok, obs, torch.tensor(mask), torch.tensor(actions), {15})
    torch.testing.assert_close(state, expected)
    never = hand_burn_in(ac, tok, obs, torch.tensor(mask), torch.tensor(actions), set())
    assert not torch.allclose(state[0], never[0])


# ----------------------------------------------------------------------------- the setting


def test_reference_is_the_default_everywhere():
    assert ActorCriticConfig().burnin_actions == "reference"
    for variant in (None, "4x4-tokenizer", "no-action-input"):
        assert load_config("paper", variant).actor_critic.burnin_actions == "reference"
    cfg = load_config("quick", None, ["actor_critic.burnin_actions=every_frame"])
    assert cfg.actor_critic.burnin_actions == "every_frame"
    assert config_from_dict(cfg.to_dict()).actor_critic.burnin_actions == "every_frame"


@pytest.mark.parametrize("old", ["false", "true"])
def test_the_replaced_key_is_a_clear_error(old, tmp_path):
    mapping = "burnin_feed_actions=false -> burnin_actions=never, burnin_feed_actions=true -> "
    with pytest.raises(ConfigError, match=mapping + "burnin_actions=every_frame"):
        load_config("quick", None, [f"actor_critic.burnin_feed_actions={old}"])
    variant = tmp_path / "old.yaml"
    variant.write_text(f"actor_critic:\n  burnin_feed_actions: {old}\n")
    with pytest.raises(ConfigError, match=f"{variant}: actor_critic.burnin_feed_actions was"):
        load_config("quick", variant)
    # a run manifest or checkpoint written before the change
    saved = load_config("quick").to_dict()
    del saved["actor_critic"]["burnin_actions"]
    saved["actor_critic"]["burnin_feed_actions"] = old == "true"
    with pytest.raises(ConfigError, match="replaced by actor_critic.burnin_actions"):
        config_from_dict(saved, source="manifest.json")


def test_bad_values_and_the_cli(capsys):
    with pytest.raises(ConfigError, match="reference, never or every_frame"):
        load_config("quick", None, ["actor_critic.burnin_actions=sometimes"])
    code = rem_main(["summary", "--game", "Breakout", "actor_critic.burnin_feed_actions=false"])
    err = capsys.readouterr().err
    assert code == 2 and "burnin_actions=never" in err and "Traceback" not in err
