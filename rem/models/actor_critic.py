"""Recurrent actor-critics and their imagination training (docs/protocol.md#actor-critic).

`RecurrentActorCritic` holds everything the latent (LSAC) and pixel actor-critics share:
the LSTMCell state for acting, masked observation/action steps, burn-in, acting, and the
imagination rollout + REINFORCE/entropy/value losses. A subclass only says how a frame's
codebook vectors become its input (`inputs_from_codes`) and how the trunk embeds it.

`LSAC` (default): convs on the (e, h, w) code map of a frame -> dense -> LSTMCell, with an
extra LSTM step on the chosen action's embedding after each observation step (switchable:
the "no-action-input" ablation).

Burn-in (`actor_critic.burnin_actions`, docs/protocol.md#burn-in): an observation step per stored
frame, without gradient; action steps only where the mode says:
- "reference" (default): after burn-in frame i when (i + 1) % tokens_per_frame == 0 and action
  inputs are on, with the action stored for frame i and frame i's padding mask. The reference
  meant "after every frame" but tested the frame index against the tokens per frame: never at
  8x8 with 20 frames, once (after frame 15) at 4x4. As in the reference, that action step runs
  in the caller's grad mode (it sits outside the reference's `no_grad`), and the later
  observation steps overwrite the state's values but not its autograd history, so the
  imagination loss also reaches the action embedding and the LSTM through that step.
- "never": observation steps only; "every_frame": an action step after every frame (what the
  reference meant). Both run entirely without gradient.

Precision: under bf16 autocast the convs/dense layers run in bf16, while the LSTM, the heads
and every loss run in fp32. A model converted with `.double()` runs in float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.distributions import Categorical

from rem.config import ActorCriticConfig, check_actor_critic
from rem.models.imagination import ImaginationEnv, context_of
from rem.models.precision import at_least_fp32
from rem.models.returns import lambda_returns

State = tuple[torch.Tensor, torch.Tensor]  # LSTM (h, c), each (n, hidden)


@dataclass
class ImaginationRollout:
    """One imagined rollout of H_eff steps for b segments.

    tokens (b, H, k) long: the frame each step acted on (step 0 = the last real frame);
    actions (b, H) long; logits (b, H, A) fp32; values (b, H) fp32 (with grad);
    rewards (b, H) float; dones (b, H) long (as sampled by the world model).
    """

    tokens: torch.Tensor
    actions: torch.Tensor
    logits: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor


def _fp32_off(device: torch.device):
    """Context that disables autocast so the LSTM and heads run in their own dtype (fp32, or
    fp64 for a `.double()` model)."""
    return torch.autocast(device_type=device.type, enabled=False)


def _values_keep_graph(old: State, new: State) -> State:
    """The values of `new` (computed without gradient) with the autograd history of `old`.

    What the reference's masked in-place update under `no_grad` does to a state that already
    carries a graph: the gradient passes through as if the step were the identity. Exact:
    new + (old - old) adds zeros.
    """
    if not old[0].requires_grad:
        return new
    return tuple(n.detach() + (o - o.detach()) for o, n in zip(old, new))  # type: ignore[return-value]


class RecurrentActorCritic(nn.Module):
    """Shared LSTM actor-critic machinery. Subclasses define `trunk`, `inputs_from_codes`,
    `lstm_input_dim` and `include_action_inputs`."""

    include_action_inputs: bool

    def __init__(
        self,
        cfg: ActorCriticConfig,
        num_actions: int,
        lstm_input_dim: int,
        context_length: int,
        *,
        tokens_per_frame: int | None = None,
    ) -> None:
        super().__init__()
        check_actor_critic(cfg)
        if cfg.imagination_horizon < context_length:
            raise ValueError(
                f"actor_critic.imagination_horizon ({cfg.imagination_horizon}) must be >= "
                f"world_model.context_length ({context_length})"
            )
        if context_length < 1:
            raise ValueError(
                f"the actor-critic's imagination starts from context_length >= 1 real frames "
                f"(the agent's registry entry: REM 2, IRIS 1), got {context_length}"
            )
        self.cfg = cfg
        self.num_actions = num_actions
        self.context_length = context_length
        self.tokens_per_frame = tokens_per_frame  # the "reference" burn-in condition needs it
        self.hidden_dim = cfg.hidden_dim
        self.lstm = nn.LSTMCell(lstm_input_dim, cfg.hidden_dim)
        self.actor = nn.Linear(cfg.hidden_dim, num_actions)
        self.critic = nn.Linear(cfg.hidden_dim, 1)
        self.state: State | None = None  # acting state, not part of the state dict

    # ------------------------------------------------------------------ to implement

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame input -> (n, lstm_input_dim)."""
        raise NotImplementedError

    def inputs_from_codes(self, codes: torch.Tensor, tokenizer: nn.Module) -> torch.Tensor:
        """codes: (n, e, h, w) codebook vectors of frames -> this model's per-frame input."""
        raise NotImplementedError

    def action_embedding(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ steps

    @property
    def effective_horizon(self) -> int:
        """Imagined steps per rollout: horizon - context_length + 1 (9, not 10, as the reference)."""
        return self.cfg.imagination_horizon - self.context_length + 1

    @property
    def state_dtype(self) -> torch.dtype:
        """The LSTM's dtype (fp32, fp64 after `.double()`): the state's and the heads' dtype."""
        return self.lstm.weight_ih.dtype

    def initial_state(self, n: int, device: torch.device | str) -> State:
        zeros = torch.zeros(n, self.hidden_dim, device=device, dtype=self.state_dtype)
        return zeros, zeros.clone()

    def _lstm_step(self, x: torch.Tensor, state: State, mask: torch.Tensor | None) -> State:
        """x: (n, d); mask: (n,) bool or None -> new state; masked-out rows keep theirs."""
        dtype = self.state_dtype  # x may be bf16 under autocast: the LSTM runs unautocast
        with _fp32_off(x.device):
            h, c = self.lstm(x.to(dtype), (state[0].to(dtype), state[1].to(dtype)))
        if mask is not None:
            keep = rearrange(~mask, "n -> n 1")
            h = torch.where(keep, state[0], h)
            c = torch.where(keep, state[1], c)
        return h, c

    def obs_step(
        self, x: torch.Tensor, state: State, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """x: per-frame input (n, ...) -> (logits (n, A) fp32, value (n,) fp32, new state)."""
        state = self._lstm_step(self.trunk(x), state, mask)
        with _fp32_off(x.device):
            logits = self.actor(state[0])
            value = rearrange(self.critic(state[0]), "n 1 -> n")
        return logits, value, state

    def action_step(
        self, actions: torch.Tensor, state: State, mask: torch.Tensor | None = None
    ) -> State:
        """actions: (n,) long -> new state (unchanged when action inputs are off)."""
        if not self.include_action_inputs:
            return state
        return self._lstm_step(self.action_embedding(actions), state, mask)

    def burnin_action_frames(self, t: int) -> list[int]:
        """Burn-in frames (0-based, of t) after which an action step is fed (docs/protocol.md#burn-in)."""
        if not self.include_action_inputs or self.cfg.burnin_actions == "never":
            return []
        if self.cfg.burnin_actions == "every_frame":
            return list(range(t))
        if self.tokens_per_frame is None:
            raise ValueError(
                "actor_critic.burnin_actions=reference needs the tokens per frame: build the "
                "actor-critic with tokens_per_frame"
            )
        return [i for i in range(t) if (i + 1) % self.tokens_per_frame == 0]

    def _burn_in(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor,
        state: State,
        actions: torch.Tensor | None,
    ) -> State:
        """inputs: (n, t, ...), mask: (n, t) bool, actions: (n, t') long (t' >= t) or None.

        Observation steps never carry gradient. With burnin_actions "reference" the action
        steps run in the caller's grad mode and later observation steps keep the state's
        autograd history (exactly the reference's gradient); the other modes are gradient-free.
        """
        action_frames = self.burnin_action_frames(inputs.shape[1])
        if action_frames and actions is None:
            raise ValueError(
                f"actor_critic.burnin_actions={self.cfg.burnin_actions} feeds action steps: "
                "burn_in needs the stored actions"
            )
        grad_actions = self.cfg.burnin_actions == "reference" and torch.is_grad_enabled()
        # Every column is stepped, all-padding ones too (their rows keep their state through
        # the mask): skipping them would read the mask on the host, a sync per training step.
        for i in range(inputs.shape[1]):
            with torch.no_grad():
                _, _, new = self.obs_step(inputs[:, i], state, mask[:, i])
            state = _values_keep_graph(state, new)
            if i in action_frames:
                with torch.set_grad_enabled(grad_actions):
                    state = self.action_step(actions[:, i], state, mask[:, i])
        return state

    # ------------------------------------------------------------------ acting API

    def reset(self, n: int, device: torch.device | str) -> None:
        """Zero the acting state for n environments."""
        self.state = self.initial_state(n, device)

    def reset_rows(self, done: torch.Tensor) -> None:
        """done: (n,) bool -> zero those rows of the acting state."""
        if self.state is None:
            raise RuntimeError("call reset(n, device) before reset_rows")
        keep = rearrange(~done.to(self.state[0].device), "n -> n 1")
        self.state = (self.state[0] * keep, self.state[1] * keep)

    def _frames_to_inputs(self, obs: torch.Tensor, tokenizer: nn.Module) -> torch.Tensor:
        """obs: (n, 3, 64, 64) float in [0, 1] -> per-frame inputs, no gradient."""
        with torch.no_grad():
            return self.inputs_from_codes(tokenizer.encode(obs).z_quantized, tokenizer)

    @torch.no_grad()
    def burn_in(
        self,
        obs: torch.Tensor,
        mask: torch.Tensor,
        tokenizer: nn.Module,
        actions: torch.Tensor | None = None,
    ) -> None:
        """obs: (n, t, 3, 64, 64) float in [0, 1], mask: (n, t) bool (False = padding),
        actions: (n, t) long, the action stored with each frame (fed where
        `burnin_actions` says). Continues from the current acting state (call `reset` first)."""
        if self.state is None:
            raise RuntimeError("call reset(n, device) before burn_in")
        n, t = obs.shape[:2]
        if t == 0:
            return
        inputs = self._frames_to_inputs(rearrange(obs, "n t c h w -> (n t) c h w"), tokenizer)
        inputs = rearrange(inputs, "(n t) ... -> n t ...", n=n)
        self.state = self._burn_in(inputs, mask.bool(), self.state, actions)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, tokenizer: nn.Module, temperature: float = 1.0
    ) -> torch.Tensor:
        """obs: (n, 3, 64, 64) float in [0, 1] -> actions (n,) long, sampled at `temperature`
        (0 = argmax); the chosen action is fed as an action step."""
        if self.state is None:
            raise RuntimeError("call reset(n, device) before act")
        logits, _, state = self.obs_step(self._frames_to_inputs(obs, tokenizer), self.state)
        if temperature <= 0:
            actions = logits.argmax(dim=-1)
        else:
            actions = Categorical(logits=logits / temperature).sample()
        self.state = self.action_step(actions, state)
        return actions

    # ------------------------------------------------------------------ imagination

    def imagine(
        self,
        batch: dict[str, torch.Tensor],
        tokenizer: nn.Module,
        world_model: nn.Module,
        *,
        actions: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ImaginationRollout:
        """Burn in on all but the last frame of each segment, then roll out H_eff steps in
        the world model from the last `context_length` real frames (REM 2, IRIS 1). Gradients flow through the
        actor-critic across imagined steps, never into the tokenizer or the world model.

        batch: observations (b, s, 3, 64, 64) float [0, 1], actions (b, s) long,
        mask_padding (b, s) bool (left padded; the last context_length steps must be real: the sampler
        guarantees it on the host, where checking is free; checking here would cost a
        host-device sync per training step).
        actions: optional (b, H_eff) long to replay instead of sampling (re-evaluating a
        recorded rollout); generator: optional RNG of the world model's samples (policy
        samples use the global RNG, so replayed actions meet the same world-model draws).
        """
        obs, real_actions, mask = batch["observations"], batch["actions"], batch["mask_padding"]
        b, s = obs.shape[:2]
        if s < self.context_length:
            raise ValueError(f"segments need >= {self.context_length} steps, got {s}")
        horizon = self.effective_horizon
        if actions is not None and actions.shape != (b, horizon):
            raise ValueError(
                f"actions to replay must be ({b}, {horizon}), got {tuple(actions.shape)}"
            )
        tokens, inputs = self._encode_segments(obs, tokenizer)
        # outside no_grad: a "reference" burn-in action step carries gradient
        # (docs/protocol.md#burn-in)
        state = self._burn_in(
            inputs[:, :-1], mask[:, :-1].bool(), self.initial_state(b, obs.device), real_actions
        )
        env = ImaginationEnv(tokenizer, world_model, generator=generator)
        env.reset(*context_of(tokens, real_actions, self.context_length))
        return self._roll_out(env, tokenizer, inputs[:, -1], tokens[:, -1], state, actions)

    def _encode_segments(
        self, obs: torch.Tensor, tokenizer: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (b, s, 3, 64, 64) -> tokens (b, s, K) and this actor-critic's inputs (b, s, ...),
        without gradient into the tokenizer."""
        b = obs.shape[0]
        with torch.no_grad():
            enc = tokenizer.encode(rearrange(obs, "b s c h w -> (b s) c h w"))
            tokens = rearrange(enc.tokens, "(b s) k -> b s k", b=b)
            inputs = self.inputs_from_codes(enc.z_quantized, tokenizer)
        return tokens, rearrange(inputs, "(b s) ... -> b s ...", b=b)

    def _roll_out(
        self,
        env: ImaginationEnv,
        tokenizer: nn.Module,
        x: torch.Tensor,
        frame_tokens: torch.Tensor,
        state: State,
        actions: torch.Tensor | None,
    ) -> ImaginationRollout:
        """H_eff imagined steps from the reset `env`: x (b, ...) the inputs and frame_tokens
        (b, K) the tokens of the last real frame; actions (b, H_eff) to replay, or None to
        sample them."""
        steps: dict[str, list[torch.Tensor]] = {
            k: [] for k in ("tokens", "actions", "logits", "values", "rewards", "dones")
        }
        horizon = self.effective_horizon
        for k in range(horizon):
            logits, value, state = self.obs_step(x, state)
            if actions is None:
                # validate_args=False: argument validation reads the device (a sync per step)
                action = Categorical(logits=logits.detach(), validate_args=False).sample()
            else:
                action = actions[:, k]
            state = self.action_step(action, state)
            last = k == horizon - 1
            next_tokens, reward, done = env.step(action, predict_next=not last)
            for key, value_k in (
                ("tokens", frame_tokens),
                ("actions", action),
                ("logits", logits),
                ("values", value),
                ("rewards", reward.float()),
                ("dones", done.long()),
            ):
                steps[key].append(value_k)
            if not last:
                frame_tokens = next_tokens
                with torch.no_grad():
                    x = self.inputs_from_codes(tokenizer.codes_from_tokens(next_tokens), tokenizer)
        return ImaginationRollout(**{k: torch.stack(v, 1) for k, v in steps.items()})

    def loss_from_rollout(
        self, rollout: ImaginationRollout, *, metrics_as_tensors: bool = False
    ) -> tuple[torch.Tensor, dict]:
        """REINFORCE with a value baseline + entropy bonus + value MSE over steps 0..H-2.
        Metrics as floats, or as detached 0-d tensors with `metrics_as_tensors` (no sync)."""
        returns = lambda_returns(
            rollout.rewards, rollout.values.detach(), rollout.dones, self.cfg.gamma, self.cfg.lam
        )[:, :-1]
        values = rollout.values[:, :-1]
        log_probs = F.log_softmax(at_least_fp32(rollout.logits[:, :-1]), dim=-1)
        chosen = log_probs.gather(-1, rollout.actions[:, :-1, None]).squeeze(-1)
        advantage = returns - values.detach()
        policy_loss = -(chosen * advantage).mean()
        entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
        entropy_loss = -self.cfg.entropy_weight * entropy
        value_loss = F.mse_loss(values, returns)
        loss = policy_loss + entropy_loss + value_loss
        names = (
            "policy_loss",
            "entropy_loss",
            "entropy",
            "value_loss",
            "loss",
            "imagined_reward_sum",
            "imagined_done_rate",
            "value_mean",
            "return_mean",
        )
        values = (
            torch.stack(
                [
                    policy_loss,
                    entropy_loss,
                    entropy,
                    value_loss,
                    loss,
                    rollout.rewards.sum(1).mean(),
                    rollout.dones.float().mean(),
                    rollout.values.mean(),
                    returns.mean(),
                ]
            )
            .detach()
            .float()
        )
        if metrics_as_tensors:
            return loss, dict(zip(names, values.unbind()))
        return loss, dict(zip(names, values.tolist()))  # one host-device sync

    def compute_loss(
        self,
        batch: dict[str, torch.Tensor],
        tokenizer: nn.Module,
        world_model: nn.Module,
        *,
        metrics_as_tensors: bool = False,
    ) -> tuple[torch.Tensor, dict]:
        """One imagination rollout on `batch` (see `imagine`) -> (loss, metrics)."""
        rollout = self.imagine(batch, tokenizer, world_model)
        return self.loss_from_rollout(rollout, metrics_as_tensors=metrics_as_tensors)


class LSAC(RecurrentActorCritic):
    """Latent-space actor-critic on (code_dim, grid, grid) codebook maps."""

    def __init__(
        self,
        cfg: ActorCriticConfig,
        num_actions: int,
        *,
        code_dim: int,
        token_grid: int,
        context_length: int = 2,
    ) -> None:
        super().__init__(
            cfg, num_actions, cfg.hidden_dim, context_length, tokens_per_frame=token_grid**2
        )
        self.include_action_inputs = cfg.include_action_inputs
        self.dense_input_dim = 64 * token_grid * token_grid  # 4096 for 8x8, 1024 for 4x4
        self.convs = nn.Sequential(
            nn.Conv2d(code_dim, 128, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.SiLU(),
        )
        self.dense = nn.Sequential(nn.Linear(self.dense_input_dim, cfg.hidden_dim), nn.SiLU())
        self.action_embed = (
            nn.Embedding(num_actions, cfg.hidden_dim) if cfg.include_action_inputs else None
        )

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, e, h, w) codes -> (n, hidden)."""
        return self.dense(rearrange(self.convs(x), "n c h w -> n (c h w)"))

    def inputs_from_codes(self, codes: torch.Tensor, tokenizer: nn.Module) -> torch.Tensor:
        return codes

    def action_embedding(self, actions: torch.Tensor) -> torch.Tensor:
        return self.action_embed(actions)
