"""World-model accuracy on real, held-out data, against baselines (`rem wm-eval`, trainer).

Held-out data: fresh steps collected by the run's own agent (train policy: the action
distribution of the replay) with the real `Collector`, in a fresh *train* env (life loss ends
an episode, as in the replay the world model learns from) seeded apart from every env the run
trained on. Those steps never enter the training replay. (`rem wm-eval --source replay`
measures the run's own replay instead: in-sample figures, for the generalisation gap.)

Figures (docs/world-model-eval.md says what each means):

1. Teacher-forced, on windows of `world_model.max_blocks` steps (the training segment length)
   tiled without overlap so that every step t >= context_length of an episode is a target
   exactly once: next-frame token accuracy and cross-entropy, also on the tokens that change
   between consecutive frames; reward (3 classes, sign) and end accuracy and F1 (argmax of the
   heads). Baselines: the same model fed shuffled actions (a permutation of the batch's
   actions), repeating the previous frame's tokens (its cross-entropy is that of the best
   "copy with probability p" distribution, p = its accuracy), the majority class.
2. Open-loop imagination, on windows of `actor_critic.imagination_horizon` steps: reset on
   the agent's context (REM: the first two real frames and a_0; IRIS: the first frame), as
   the actor-critic does, then step with the *real*
   actions a_1, a_2, ...; the imagined frames (tokens sampled at temperature 1, as the
   actor-critic sees them; seeded) are decoded and compared with the real frames (pixel MSE,
   in [0, 1] units) per imagination step; baselines: the tokenizer's reconstruction of the
   real frame (the floor the world model can reach) and repeating the last real frame.

Notation: b segments, t steps, K tokens per frame, V vocabulary.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rem.data.collector import Collector
from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import Batch, batch_to_device
from rem.policy import Policy

# `derived_seed` purpose of the held-out env and policy (the trainer's purposes are 1..5).
SEED_WM_EVAL = 17
# The trainer's periodic figures: held-out steps and a cap on each kind of window. 400 steps
# (about 50 windows) put a few hundred frames behind each figure at a few CPU-seconds.
WM_EVAL_STEPS, WM_EVAL_SEGMENTS = 400, 64


# ------------------------------------------------------------------ data


def collect_held_out(env: gym.Env, policy: Policy, steps: int) -> Replay:
    """`steps` fresh env steps with `policy` through the real collector, into a new replay
    (finished episodes and the unfinished last one)."""
    replay = Replay()
    Collector(env, replay, burn_in=0).collect(policy, steps)
    return replay


def newest_steps(replay: Replay, steps: int) -> Replay:
    """The newest episodes of `replay` holding at least `steps` steps (in-sample figures)."""
    out, total = Replay(), 0
    chosen = []
    for episode_id in reversed(replay.ids()):
        if total >= steps:
            break
        chosen.append(replay[episode_id])
        total += len(replay[episode_id])
    for episode in reversed(chosen):
        out.add(episode)
    return out


def tile_windows(replay: Replay, length: int, context: int) -> list[tuple[Episode, int]]:
    """Non-overlapping windows [start, start + length) of every episode, right padded like
    the world-model sampler, starting at 0, length - context, ...: every step t >= context
    is a target (a non-context step) of exactly one window; each window holds > context real
    steps."""
    stride = length - context
    return [
        (episode, start)
        for episode in replay.episodes()
        for start in range(0, len(episode) - context, stride)
    ]


def windows_batch(windows: list[tuple[Episode, int]], length: int) -> Batch:
    """The windows as a sampler batch: observations uint8 (b,t,3,h,w), actions int64 (b,t),
    rewards float32 (b,t), ends int64 (b,t), mask_padding bool (b,t)."""
    b = len(windows)
    frame_shape = windows[0][0].observations.shape[1:]
    obs = np.zeros((b, length, *frame_shape), dtype=np.uint8)
    actions = np.zeros((b, length), dtype=np.int64)
    rewards = np.zeros((b, length), dtype=np.float32)
    ends = np.zeros((b, length), dtype=np.int64)
    mask = np.zeros((b, length), dtype=bool)
    for row, (episode, start) in enumerate(windows):
        stop = min(start + length, len(episode))
        n = stop - start
        obs[row, :n] = episode.observations[start:stop]
        actions[row, :n] = episode.actions[start:stop]
        rewards[row, :n] = episode.rewards[start:stop]
        ends[row, :n] = episode.ends[start:stop]
        mask[row, :n] = True
    arrays = {
        "observations": obs,
        "actions": actions,
        "rewards": rewards,
        "ends": ends,
        "mask_padding": mask,
    }
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _subset(items: list, limit: int | None, rng: np.random.Generator) -> list:
    """At most `limit` items, a seeded random subset kept in order."""
    if limit is None or len(items) <= limit:
        return items
    keep = np.sort(rng.choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]


def shuffle_actions(actions: Tensor, mask: Tensor, rng: np.random.Generator) -> Tensor:
    """actions (b, t) with the real steps' actions randomly permuted among the real steps of
    the whole batch (same action frequencies, no link to the frames)."""
    out = actions.clone()
    real = mask.bool()
    values = actions[real]
    out[real] = values[torch.from_numpy(rng.permutation(len(values))).to(values.device)]
    return out


# ------------------------------------------------------------------ the model's predictions


def teacher_forced(
    world_model: nn.Module, tokenizer: nn.Module, obs_tokens: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Next-frame, reward and end logits of the training forward pass (what the losses see).

    obs_tokens long (b, t, K), actions long (b, t) -> logits obs (b, t', K, V), reward
    (b, t', 3), end (b, t', 2) for the blocks t >= context_length (t' = t - context_length).
    POP: every token of frame t is predicted in parallel from the state after block t-1.
    No-POP and IRIS's GPT: token i of frame t is predicted after the real tokens 0..i-1 of
    frame t (the usual teacher forcing of a next-token model).
    """
    ctx = world_model.cfg.context_length
    return _reader(world_model)(world_model, tokenizer, obs_tokens, actions, ctx)


def _pop_logits(world_model, tokenizer, obs_tokens, actions, ctx: int):
    """POP: (b, t, j, E) outputs; every token of frame t from the state after block t-1."""
    k = world_model.tokens_per_frame
    outputs = world_model(world_model.block_tokens(obs_tokens, actions), tokenizer)[:, ctx:]
    return _heads(world_model, outputs[:, :, :k], outputs[:, :, k])


def _next_token_logits(world_model, tokenizer, obs_tokens, actions, ctx: int):
    """A next-token model (REM's no-POP, IRIS's GPT): (b, t*j, E) outputs, output p
    predicts token p + 1."""
    k, j = world_model.tokens_per_frame, world_model.tokens_per_block
    outputs = world_model(world_model.block_tokens(obs_tokens, actions), tokenizer)
    from_tokens = rearrange(outputs[:, ctx * j - 1 : -1], "b (t j) e -> b t j e", j=j)
    last = rearrange(outputs, "b (t j) e -> b t j e", j=j)[:, ctx:, k]
    return _heads(world_model, from_tokens[:, :, :k], last)


def _heads(world_model, from_tokens: Tensor, last: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """-> logits obs (b, t', K, V), reward (b, t', 3), end (b, t', 2)."""
    return (
        world_model.head_obs(from_tokens),
        world_model.head_reward(last),
        world_model.head_end(last),
    )


def _reader(world_model: nn.Module):
    """How a world model's teacher-forced logits are read, by its class (a new world-model
    kind adds a row here: README "Add an agent")."""
    from rem.models.iris import IrisWorldModel
    from rem.models.world_model import POPWorldModel, TokenWorldModel

    for cls, reader in (
        (POPWorldModel, _pop_logits),
        (TokenWorldModel, _next_token_logits),  # no-POP
        (IrisWorldModel, _next_token_logits),
    ):
        if isinstance(world_model, cls):
            return reader
    raise TypeError(
        f"world-model evaluation has no reader for {type(world_model).__name__}; add one to "
        "rem.evaluation.world_model_eval._reader"
    )


@dataclass
class _Counts:
    """Running sums of one teacher-forced condition (true or shuffled actions)."""

    correct: float = 0.0
    ce: float = 0.0
    correct_changed: float = 0.0
    reward_pred: list[np.ndarray] = field(default_factory=list)
    end_pred: list[np.ndarray] = field(default_factory=list)

    def add(self, logits_obs, target, changed, valid, logits_reward, logits_end) -> None:
        """logits_obs (b,t',K,V), target (b,t',K), changed (b,t',K) bool, valid (b,t') bool."""
        v = valid[..., None].expand_as(target)
        hit = (logits_obs.argmax(-1) == target) & v
        ce = F.cross_entropy(logits_obs.float().flatten(0, 2), target.flatten(), reduction="none")
        self.correct += float(hit.sum())
        self.ce += float((ce * v.flatten()).sum())
        self.correct_changed += float((hit & changed).sum())
        self.reward_pred.append((logits_reward.argmax(-1) - 1)[valid].cpu().numpy())  # sign
        self.end_pred.append(logits_end.argmax(-1)[valid].cpu().numpy())


# ------------------------------------------------------------------ classification figures


def f1_macro(target: np.ndarray, pred: np.ndarray) -> float | None:
    """Mean F1 over the classes present in `target` or `pred` (None when both are empty)."""
    classes = np.union1d(target, pred)
    if len(classes) == 0:
        return None
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (target == c))
        fp = np.sum((pred == c) & (target != c))
        fn = np.sum((pred != c) & (target == c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def f1_binary(target: np.ndarray, pred: np.ndarray) -> float | None:
    """F1 of the positive class (None when neither targets nor predictions have one)."""
    tp = np.sum((pred == 1) & (target == 1))
    denominator = 2 * tp + np.sum((pred == 1) & (target == 0)) + np.sum((pred == 0) & (target == 1))
    return None if denominator == 0 else float(2 * tp / denominator)


def _classification(target: np.ndarray, pred: np.ndarray, binary: bool) -> dict[str, Any]:
    f1 = f1_binary if binary else f1_macro
    return {
        "accuracy": float(np.mean(pred == target)) if len(target) else None,
        "f1": f1(target, pred),
    }


def _majority(target: np.ndarray, binary: bool) -> dict[str, Any]:
    if len(target) == 0:
        return {"accuracy": None, "f1": None, "class": None}
    values, counts = np.unique(target, return_counts=True)
    majority = int(values[np.argmax(counts)])
    return {**_classification(target, np.full_like(target, majority), binary), "class": majority}


def copy_cross_entropy(accuracy: float, vocab: int) -> float:
    """Cross-entropy (nats) of the best 'previous token with probability p, the rest uniform'
    distribution, p = accuracy (the repeat baseline made a fair, finite CE)."""
    p = min(max(accuracy, 1e-12), 1 - 1e-12)
    return float(-(p * math.log(p) + (1 - p) * math.log((1 - p) / (vocab - 1))))


# ------------------------------------------------------------------ evaluation


@dataclass
class WorldModelEval:
    """All figures of one evaluation (see the module docstring); None = undefined (no data)."""

    segments: int
    steps: int  # real steps of the evaluated data
    episodes: int
    target_frames: int  # teacher-forced next-frame targets
    changed_token_share: float  # share of target tokens that differ from the previous frame
    token_accuracy: dict[str, float]  # model, shuffled_actions, repeat_previous
    token_accuracy_changed: dict[str, float | None]
    token_cross_entropy: dict[str, float]
    # model, shuffled_actions, majority -> accuracy, f1 (+ class: the majority's reward sign)
    reward: dict[str, dict[str, Any]]
    end: dict[str, dict[str, Any]]
    reward_counts: dict[str, int]  # target class counts: "-1", "0", "1"
    end_count: int
    imagination_segments: int
    imagination_mse: dict[str, list[float | None]]  # model, reconstruction, repeat_last per step
    imagination_mse_mean: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self, prefix: str = "wm_eval") -> dict[str, Any]:
        """Flat metrics for metrics.jsonl: `prefix/name`."""
        out: dict[str, Any] = {
            f"{prefix}/segments": self.segments,
            f"{prefix}/target_frames": self.target_frames,
            f"{prefix}/changed_token_share": self.changed_token_share,
        }
        for name in ("token_accuracy", "token_accuracy_changed", "token_cross_entropy"):
            for key, value in getattr(self, name).items():
                out[f"{prefix}/{name}/{key}"] = value
        for head in ("reward", "end"):
            for key, figures in getattr(self, head).items():
                out[f"{prefix}/{head}_accuracy/{key}"] = figures["accuracy"]
                out[f"{prefix}/{head}_f1/{key}"] = figures["f1"]
        for key, value in self.imagination_mse_mean.items():
            out[f"{prefix}/imagination_mse/{key}"] = value
        out[f"{prefix}/imagination_mse_per_step/model"] = self.imagination_mse["model"]
        return out


# ------------------------------------------------------------------ the two passes


@contextlib.contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode inside the block, their own train/eval mode restored after."""
    modes = {m: m.training for m in modules}
    for module in modes:
        module.eval()
    try:
        yield
    finally:
        for module, was_training in modes.items():
            module.train(was_training)


def encode_frames(tokenizer: nn.Module, observations: Tensor) -> Tensor:
    """observations uint8 (b, t, 3, h, w) -> tokens long (b, t, K)."""
    frames = rearrange(observations, "b t c h w -> (b t) c h w")
    return rearrange(tokenizer.encode(frames).tokens, "(b t) k -> b t k", b=len(observations))


def decode_tokens(tokenizer: nn.Module, tokens: Tensor) -> Tensor:
    """tokens long (b, s, K) -> frames float (b, s, 3, h, w)."""
    codes = tokenizer.codes_from_tokens(rearrange(tokens, "b s k -> (b s) k"))
    return rearrange(tokenizer.decode(codes).float(), "(b s) c h w -> b s c h w", b=len(tokens))


def _ratio(x: float, n: float) -> float | None:
    return x / n if n else None


@dataclass
class _TeacherForcedSums:
    """Running sums of the teacher-forced figures over every window."""

    model: _Counts = field(default_factory=_Counts)
    shuffled_actions: _Counts = field(default_factory=_Counts)
    repeat_correct: float = 0.0  # target tokens equal to the previous frame's
    tokens: float = 0.0  # target tokens
    changed: float = 0.0  # target tokens that differ from the previous frame's
    frames: float = 0.0  # target frames
    reward_target: list[np.ndarray] = field(default_factory=list)  # sign: -1, 0, 1
    end_target: list[np.ndarray] = field(default_factory=list)

    def add_batch(
        self,
        tokenizer: nn.Module,
        world_model: nn.Module,
        batch: Batch,
        rng: np.random.Generator,
        autocast: contextlib.AbstractContextManager,
    ) -> None:
        """One batch of windows: the model with the true and with shuffled actions, the
        repeat baseline and the reward and end targets of the steps after the context."""
        ctx, k = world_model.cfg.context_length, world_model.tokens_per_frame
        with autocast:
            obs_tokens = encode_frames(tokenizer, batch["observations"])  # (b, t, K)
            valid = batch["mask_padding"][:, ctx:]
            target = obs_tokens[:, ctx:]
            previous = obs_tokens[:, ctx - 1 : -1]
            changed = (target != previous) & valid[..., None]
            shuffled = shuffle_actions(batch["actions"], batch["mask_padding"], rng)
            for counts, actions in (
                (self.model, batch["actions"]),
                (self.shuffled_actions, shuffled),
            ):
                logits_obs, logits_reward, logits_end = teacher_forced(
                    world_model, tokenizer, obs_tokens, actions
                )
                counts.add(logits_obs, target, changed, valid, logits_reward, logits_end)
        self.repeat_correct += float(((target == previous) & valid[..., None]).sum())
        self.tokens += float(valid.sum()) * k
        self.changed += float(changed.sum())
        self.frames += float(valid.sum())
        self.reward_target.append(torch.sign(batch["rewards"][:, ctx:]).long()[valid].cpu().numpy())
        self.end_target.append(batch["ends"][:, ctx:][valid].cpu().numpy())

    def figures(self, vocab: int) -> dict[str, Any]:
        """The teacher-forced fields of WorldModelEval."""
        model, shuffled = self.model, self.shuffled_actions
        n_tokens, n_changed = self.tokens, self.changed
        repeat_acc = self.repeat_correct / n_tokens
        reward_target = np.concatenate(self.reward_target)
        end_target = np.concatenate(self.end_target)
        reward_model = np.concatenate(model.reward_pred)
        reward_shuffled = np.concatenate(shuffled.reward_pred)
        end_model = np.concatenate(model.end_pred)
        end_shuffled = np.concatenate(shuffled.end_pred)
        return dict(
            target_frames=int(self.frames),
            changed_token_share=n_changed / n_tokens,
            token_accuracy={
                "model": model.correct / n_tokens,
                "shuffled_actions": shuffled.correct / n_tokens,
                "repeat_previous": repeat_acc,
            },
            token_accuracy_changed={
                "model": _ratio(model.correct_changed, n_changed),
                "shuffled_actions": _ratio(shuffled.correct_changed, n_changed),
                "repeat_previous": 0.0 if n_changed else None,
            },
            token_cross_entropy={
                "model": model.ce / n_tokens,
                "shuffled_actions": shuffled.ce / n_tokens,
                "repeat_previous": copy_cross_entropy(repeat_acc, vocab),
            },
            reward={
                "model": _classification(reward_target, reward_model, binary=False),
                "shuffled_actions": _classification(reward_target, reward_shuffled, binary=False),
                "majority": _majority(reward_target, binary=False),
            },
            end={
                "model": _classification(end_target, end_model, binary=True),
                "shuffled_actions": _classification(end_target, end_shuffled, binary=True),
                "majority": _majority(end_target, binary=True),
            },
            reward_counts={str(c): int(np.sum(reward_target == c)) for c in (-1, 0, 1)},
            end_count=int(end_target.sum()),
        )


def imagine_open_loop(
    tokenizer: nn.Module,
    world_model: nn.Module,
    real_tokens: Tensor,
    actions: Tensor,
    generator: torch.Generator,
) -> Tensor:
    """Reset on the context frames and the action before the last of them (as the
    actor-critic does), then step with the real actions that follow.

    real_tokens long (b, t, K), actions long (b, t) -> imagined tokens long (b, t - ctx, K).
    """
    from rem.models.imagination import ImaginationEnv, context_of

    ctx = world_model.cfg.context_length
    env = ImaginationEnv(tokenizer, world_model, generator=generator)
    env.reset(*context_of(real_tokens[:, :ctx], actions[:, :ctx], ctx))
    imagined = []
    for step in range(real_tokens.shape[1] - ctx):
        # frame ctx + step follows action a_(ctx - 1 + step)
        next_tokens, _, _ = env.step(actions[:, ctx - 1 + step])
        imagined.append(next_tokens)
    return torch.stack(imagined, 1)


@dataclass
class _ImaginationSums:
    """Running per-step sums of the pixel MSE of the imagined frames and of the baselines."""

    mse: dict[str, np.ndarray]  # model, reconstruction, repeat_last -> (steps,)
    frames: np.ndarray  # (steps,) real frames at each imagination step

    @classmethod
    def zeros(cls, steps: int) -> _ImaginationSums:
        keys = ("model", "reconstruction", "repeat_last")
        return cls({key: np.zeros(steps) for key in keys}, np.zeros(steps))

    def add_batch(
        self,
        tokenizer: nn.Module,
        world_model: nn.Module,
        batch: Batch,
        generator: torch.Generator,
        autocast: contextlib.AbstractContextManager,
    ) -> None:
        """One batch of windows: imagined, reconstructed and repeated frames against the
        real frames after the context."""
        ctx = world_model.cfg.context_length
        obs, actions, mask = batch["observations"], batch["actions"], batch["mask_padding"]
        with autocast:
            real_tokens = encode_frames(tokenizer, obs)  # (b, t, K)
            imagined = imagine_open_loop(tokenizer, world_model, real_tokens, actions, generator)
            decoded = decode_tokens(tokenizer, imagined)
            recon = decode_tokens(tokenizer, real_tokens[:, ctx:])
        real = obs[:, ctx:].float()
        last = obs[:, ctx - 1 : ctx].float().expand_as(real)
        valid = mask[:, ctx:].float()
        for key, pred in (("model", decoded), ("reconstruction", recon), ("repeat_last", last)):
            mse = ((pred - real) ** 2).mean(dim=(2, 3, 4))  # (b, steps)
            self.mse[key] += (mse * valid).sum(0).cpu().numpy()
        self.frames += valid.sum(0).cpu().numpy()

    def figures(self) -> dict[str, Any]:
        """The imagination fields of WorldModelEval."""
        total = self.frames.sum()
        return {
            "imagination_mse": {
                key: [float(s / n) if n else None for s, n in zip(sums, self.frames)]
                for key, sums in self.mse.items()
            },
            "imagination_mse_mean": {
                key: float(sums.sum() / total) if total else None for key, sums in self.mse.items()
            },
        }


def _check_context(context: int, imagination_horizon: int) -> None:
    if context < 1:
        raise ValueError(f"world_model.context_length must be >= 1 real frame, got {context}")
    if imagination_horizon <= context:
        raise ValueError(
            f"imagination_horizon ({imagination_horizon}) must exceed the context ({context})"
        )


@torch.no_grad()
def evaluate_world_model(
    tokenizer: nn.Module,
    world_model: nn.Module,
    data: Replay,
    *,
    device: torch.device | str,
    imagination_horizon: int,
    batch_size: int = 16,
    max_segments: int | None = None,
    seed: int = 0,
    autocast: contextlib.AbstractContextManager | None = None,
) -> WorldModelEval:
    """Figures of the module docstring on the episodes of `data` (eval mode, no gradient).

    imagination_horizon: steps per imagination window, context included (the actor-critic's
    `imagination_horizon`); max_segments bounds each kind of window (a seeded subset).
    The global RNGs are left untouched (imagination samples with its own generator).
    """
    ctx, length = world_model.cfg.context_length, world_model.cfg.max_blocks
    _check_context(ctx, imagination_horizon)
    device = torch.device(device)
    autocast = autocast or contextlib.nullcontext()
    rng = np.random.default_rng(seed)  # window subsets, then action shuffles, in this order
    with _eval_mode(tokenizer, world_model):
        # 1. teacher-forced, on windows of the training segment length
        windows = _subset(tile_windows(data, length, ctx), max_segments, rng)
        if not windows:
            raise ValueError(
                f"no episode of the evaluation data has more than {ctx} steps; collect more"
            )
        teacher = _TeacherForcedSums()
        for chunk in _chunks(windows, batch_size):
            batch = batch_to_device(windows_batch(chunk, length), device)
            teacher.add_batch(tokenizer, world_model, batch, rng, autocast)
        # 2. open-loop imagination with the real actions
        im_windows = _subset(tile_windows(data, imagination_horizon, ctx), max_segments, rng)
        imagination = _ImaginationSums.zeros(imagination_horizon - ctx)
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        for chunk in _chunks(im_windows, batch_size):
            batch = batch_to_device(windows_batch(chunk, imagination_horizon), device)
            imagination.add_batch(tokenizer, world_model, batch, generator, autocast)
    return WorldModelEval(
        segments=len(windows),
        steps=data.num_steps,
        episodes=len(data),
        imagination_segments=len(im_windows),
        **teacher.figures(world_model.obs_vocab),
        **imagination.figures(),
    )


# ------------------------------------------------------------------ a run's agent


def evaluate_run_world_model(
    agent: nn.Module,
    cfg: Any,
    game: str,
    run_seed: int,
    eval_seed: int,
    *,
    steps: int,
    device: torch.device | str,
    max_segments: int | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> tuple[WorldModelEval, Replay]:
    """Collect `steps` held-out steps with the run's train policy in a fresh train env, then
    `evaluate_world_model` on them -> (figures, the held-out data).

    Seeds: env, policy and imagination derive from (run_seed, SEED_WM_EVAL, eval_seed), never
    from a seed the run trains with; the global RNGs are restored afterwards, so calling this
    inside training changes nothing else (the trainer passes the epoch as `eval_seed`).
    """
    from rem.envs.atari import make_env
    from rem.evaluation.agent_policy import AgentPolicy
    from rem.utils.rng import derived_seed

    device = torch.device(device)
    seed = derived_seed(run_seed, SEED_WM_EVAL, eval_seed)
    was_training = agent.training
    agent.eval()
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)  # the policy samples with torch's global generator
        policy = AgentPolicy(
            agent,
            cfg.collection.train_temperature,
            cfg.collection.train_epsilon,
            device,
            num_actions=agent.num_actions,
            seed=seed,
        )
        policy.autocast = cfg.run.bf16 and device.type == "cuda"
        env = make_env(game, train=True, seed=seed, cfg=cfg.env)
        try:
            data = collect_held_out(env, policy, steps)
        finally:
            env.close()
        figures = evaluate_world_model(
            agent.tokenizer,
            agent.world_model,
            data,
            device=device,
            imagination_horizon=cfg.actor_critic.imagination_horizon,
            batch_size=cfg.training.world_model.batch_size,
            max_segments=max_segments,
            seed=seed,
            autocast=autocast,
        )
    agent.train(was_training)
    return figures, data
