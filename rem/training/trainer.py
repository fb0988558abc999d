"""The training run (docs/protocol.md#budget-and-schedule): epoch loop, evaluation, checkpoints, final scores.

Per epoch e = 1..E (paper: 600):
  1. e <= collection.stop_after_epochs: collect `steps_per_epoch` train steps (train policy);
  2. tokenizer (e > start), world model (e > start), actor-critic (e > start): each
     `steps_per_epoch` AdamW steps with the global grad norm logged before clipping;
     components are put in eval mode after their block (the WM trains on a fixed tokenizer,
     the AC imagines with a fixed tokenizer and WM);
  3. e % evaluation.every == 0 and e >= tokenizer start: evaluation block;
  4. metrics line; e % run.checkpoint_every == 0 or e == E: checkpoint.
After epoch E: exactly `evaluation.final_episodes` test episodes with the test policy ->
scores.json, then COMPLETED.

Resume: the committed checkpoint restores models, optimisers, replay, the collector (env
state + unfinished episode), the samplers' and policies' generators and the global RNGs, so
with `run.deterministic=true` on CPU a killed-and-resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rem.config import ComponentTrainingConfig, Config
from rem.data.collector import Collector
from rem.data.episode import Episode
from rem.data.replay import Replay
from rem.data.sampler import SegmentSampler, batch_to_device
from rem.envs.atari import make_env, num_actions
from rem.evaluation.agent_policy import AgentPolicy
from rem.evaluation.evaluate import evaluate
from rem.evaluation.world_model_eval import (
    WM_EVAL_SEGMENTS,
    WM_EVAL_STEPS,
    evaluate_run_world_model,
)
from rem.models.agent import build_agent
from rem.models.optim import build_optimizers
from rem.runs import layout
from rem.runs.files import read_metrics
from rem.training.checkpoint import clean_debris, load_checkpoint, read_latest, save_checkpoint
from rem.training.components import COMPONENTS, TOKENIZER, WORLD_MODEL, ComponentSpec
from rem.training.health import (
    NonFiniteError,
    check_phase,
    nan_hook,
    previous_failures_note,
    stop_on_failure,
    training_seconds,
)
from rem.training.media import EpisodeSaver, save_reconstructions
from rem.training.metrics import MetricsLogger
from rem.training.run_dir import RunDir, device_info
from rem.training.snapshot import save_snapshot
from rem.training.step import optimizer_step, summarise_phase
from rem.utils.device import resolve_device
from rem.utils.faults import maybe_kill, watch
from rem.utils.rng import (
    FINAL,
    SEED_EVAL,
    SEED_SAMPLER,
    SEED_TEST_POLICY,
    SEED_TRAIN_ENV,
    SEED_TRAIN_POLICY,
    configure_determinism,
    derived_seed,
    rng_state,
    seed_everything,
    set_rng_state,
)


@dataclass
class Component:
    """A row of the component table (rem.training.components) bound to this run's module,
    optimiser and training sampler."""

    spec: ComponentSpec
    module: nn.Module
    optimizer: torch.optim.Optimizer
    sampler: SegmentSampler
    cfg: ComponentTrainingConfig

    @property
    def name(self) -> str:
        return self.spec.name


class Trainer:
    def __init__(
        self,
        cfg: Config,
        *,
        game: str,
        seed: int,
        variant: str,
        run_dir: str | Path,
        preset: str = "paper",
        overrides: list[str] | None = None,
        log: Callable[[str], None] = print,
        retrain: bool = False,
    ) -> None:
        self.cfg, self.game, self.seed, self.variant = cfg, game, seed, variant
        self.preset, self.overrides = str(preset), list(overrides or [])
        self.retrain = retrain  # discard the folder's run and train from scratch
        self.run = RunDir(run_dir)
        self.log = log
        self.identity = {"game": game, "variant": variant, "seed": seed, "config": cfg.to_dict()}
        self.device = resolve_device(cfg.run.device)
        self.show_progress = sys.stderr.isatty()

    # ------------------------------------------------------------------ setup

    def _autocast(self) -> contextlib.AbstractContextManager:
        enabled = self.cfg.run.bf16 and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def setup(self, replay_dir: Path | None = None) -> None:
        """Build the agent, optimisers, replay, train env, collector, policies and the
        components; `replay_dir` = the checkpoint's replay when resuming. `fit` calls it;
        benchmarks call it, then `run_epoch` and `evaluate`, and finally `close`."""
        cfg, device = self.cfg, self.device
        self._configure_torch()
        self.num_actions = num_actions(self.game)
        # Resuming: the checkpoint holds the frozen LPIPS tensors, no weight files needed.
        self.agent = build_agent(
            cfg, self.num_actions, load_perceptual_weights=replay_dir is None
        ).to(device)
        self.optimizers = build_optimizers(self.agent, cfg)
        bounds = cfg.collection  # a resumed replay keeps the bounds it was saved with
        self.replay = (
            Replay.load(replay_dir)
            if replay_dir is not None
            else Replay(
                max_bytes=int(bounds.replay_max_gib * 2**30) or None,
                max_steps=bounds.replay_max_steps or None,
            )
        )
        self.env = make_env(
            self.game, train=True, seed=derived_seed(self.seed, SEED_TRAIN_ENV), cfg=cfg.env
        )
        self.collector = Collector(self.env, self.replay, burn_in=cfg.actor_critic.burn_in)
        self.to_device = lambda batch: batch_to_device(batch, device)
        self._build_policies()
        self.components = [
            Component(
                spec,
                getattr(self.agent, spec.name),
                getattr(self.optimizers, spec.name),
                spec.sampler(
                    cfg,
                    self.replay,
                    np.random.default_rng(derived_seed(self.seed, SEED_SAMPLER, i)),
                    pin_memory=device.type == "cuda",
                ),
                spec.schedule(cfg),
            )
            for i, spec in enumerate(COMPONENTS)
        ]
        self.samplers = {c.name: c.sampler for c in self.components}
        self.num_test_episodes = 0
        media = self.run.media / layout.EPISODES
        self.savers = {k: EpisodeSaver(media, k) for k in ("train", "test", "imagination")}

    def _configure_torch(self) -> None:
        cfg = self.cfg
        configure_determinism(cfg.run.deterministic)
        if cfg.run.torch_threads:
            torch.set_num_threads(cfg.run.torch_threads)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = cfg.run.tf32
            torch.backends.cudnn.allow_tf32 = cfg.run.tf32
        seed_everything(self.seed)

    def _build_policies(self) -> None:
        """Train policy (temperature 1, epsilon 0.01) and test policy (temperature 0.5)."""
        cfg, device = self.cfg, self.device
        policies = {}
        for name, temperature, epsilon, purpose in (
            (
                "train",
                cfg.collection.train_temperature,
                cfg.collection.train_epsilon,
                SEED_TRAIN_POLICY,
            ),
            ("test", cfg.collection.test_temperature, 0.0, SEED_TEST_POLICY),
        ):
            policies[name] = AgentPolicy(
                self.agent,
                temperature,
                epsilon,
                device,
                num_actions=self.num_actions,
                seed=derived_seed(self.seed, purpose),
            )
            policies[name].autocast = cfg.run.bf16 and device.type == "cuda"
        # fault-injection tests kill inside collection/evaluation (the policy itself otherwise)
        self.train_policy = watch(policies["train"], "collect")
        self.test_policy = watch(policies["test"], "evaluate")

    def close(self) -> None:
        """Close the train env (its emulator)."""
        self.env.close()

    # ------------------------------------------------------------------ state

    def state_dict(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "agent": self.agent.state_dict(),
            "optimizers": self.optimizers.state_dict(),
            "collector": self.collector.state_dict(),
            "samplers": {k: s.rng.bit_generator.state for k, s in self.samplers.items()},
            "train_policy": self.train_policy.state_dict(),
            "test_policy": self.test_policy.state_dict(),
            "num_test_episodes": self.num_test_episodes,
            "rng": rng_state(),
            "identity": self.identity,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizers.load_state_dict(state["optimizers"])
        self.collector.load_state_dict(state["collector"])
        for key, sampler in self.samplers.items():
            sampler.rng.bit_generator.state = state["samplers"][key]
        self.train_policy.load_state_dict(state["train_policy"])
        self.test_policy.load_state_dict(state["test_policy"])
        self.num_test_episodes = state["num_test_episodes"]
        set_rng_state(state["rng"])

    def _checkpoint(self, epoch: int) -> None:
        save_checkpoint(self.run.checkpoints, epoch, self.state_dict(epoch), self.replay.save)
        every = self.cfg.run.snapshot_every
        if every and epoch % every == 0:  # a committed checkpoint kept for later evaluation
            save_snapshot(self.run.path, epoch)

    # ------------------------------------------------------------------ phases

    def _collect(self, epoch: int) -> dict[str, Any]:
        self.agent.eval()
        replay = self.replay
        unfinished = {i for i in replay.ids() if not replay[i].ended}
        before = set(replay.ids())
        stats = self.collector.collect(self.train_policy, self.cfg.collection.steps_per_epoch)
        if self.cfg.run.save_media:
            for i in replay.ids():
                if replay[i].ended and (i not in before or i in unfinished):
                    self.savers["train"].save(replay[i], i, epoch)
        return {
            "collection/steps": stats.steps,
            "collection/episodes": stats.episodes,
            "collection/return": float(np.mean(stats.returns)) if stats.returns else None,
            "collection/length": float(np.mean(stats.lengths)) if stats.lengths else None,
            "collection/total_steps": self.collector.total_steps,
            "collection/total_episodes": self.collector.total_episodes,
            "replay/steps": replay.num_steps,
            "replay/episodes": len(replay),
        }

    def _train_component(self, comp: Component, epoch: int) -> dict[str, float]:
        comp.module.train()
        comp.sampler.rebuild()  # snapshot of the replay as this component's epoch starts
        params = [p for group in comp.optimizer.param_groups for p in group["params"]]
        rows, norms = [], []
        # the table's loss on this agent (nan_hook returns it as is unless a test asks)
        loss_fn = nan_hook(comp.name, epoch, lambda batch: comp.spec.loss(self.agent, batch))
        steps = range(comp.cfg.steps_per_epoch)
        bar = tqdm(
            steps, desc=f"epoch {epoch} {comp.name}", leave=False, disable=not self.show_progress
        )
        for _ in bar:
            batch = self.to_device(comp.sampler.sample())
            metrics, norm = optimizer_step(
                lambda batch=batch: loss_fn(batch),
                comp.optimizer,
                params,
                comp.cfg.max_grad_norm,
                self._autocast(),
            )
            rows.append(metrics)
            norms.append(norm)
        comp.module.eval()
        out = summarise_phase(rows, f"{comp.name}/train", norms)  # the phase's one host read
        check_phase(comp.name, epoch, out, rows, norms)  # non-finite loss/grad: stop (health.py)
        return out

    def _test_episodes(self, episodes: int, seed: int, keep: bool):
        self.agent.eval()
        return evaluate(
            self.game,
            self.test_policy,
            episodes,
            seed,
            self.cfg.evaluation.num_envs,
            self.cfg.env,
            progress=self.show_progress,
            keep_trajectories=keep,
        )

    @torch.no_grad()
    def evaluate(self, epoch: int) -> dict[str, Any]:
        """The evaluation block (docs/protocol.md#evaluation-block): fresh test episodes, then
        the components' evaluations on them."""
        cfg = self.cfg
        result = self._test_episodes(
            cfg.evaluation.episodes, derived_seed(self.seed, SEED_EVAL, epoch), keep=True
        )
        metrics: dict[str, Any] = {
            "test/return_mean": result.mean_return,
            "test/return_std": result.std_return,
            "test/length_mean": float(np.mean(result.lengths)),
            "test/episodes": result.episodes,
            "test/returns": result.returns,
        }
        test = Replay()  # the test dataset is rebuilt at every evaluation
        for episode in result.trajectories:
            episode_id = test.add(episode)
            if cfg.run.save_media:
                self.savers["test"].save(episode, self.num_test_episodes + episode_id, epoch)
        self.num_test_episodes += len(result.trajectories)
        rng = np.random.default_rng(derived_seed(self.seed, SEED_EVAL, epoch, 1))
        with self._autocast():
            metrics.update(self._evaluate_components(test, rng, epoch))
        if WORLD_MODEL.started(cfg, epoch):  # world-model figures vs baselines, held-out steps
            figures, _ = evaluate_run_world_model(
                self.agent,
                cfg,
                self.game,
                self.seed,
                epoch,
                steps=WM_EVAL_STEPS,
                device=self.device,
                max_segments=WM_EVAL_SEGMENTS,
                autocast=self._autocast(),
            )
            metrics.update(figures.flat())
        if cfg.run.save_media and TOKENIZER.started(cfg, epoch):
            self._save_reconstructions(test, rng, epoch)
        return metrics

    def _evaluate_components(
        self, test: Replay, rng: np.random.Generator, epoch: int
    ) -> dict[str, Any]:
        """Each started component on the test episodes, with its own sampler shape: the
        tokenizer and world-model losses, the actor-critic's imagination inspection."""
        metrics: dict[str, Any] = {}
        for spec in COMPONENTS:
            sampler = spec.sampler(self.cfg, test, rng)
            if not spec.started(self.cfg, epoch) or sampler.rebuild() == 0:
                continue
            if spec.eval_batches is None:
                metrics.update(self._inspect_imagination(sampler.sample(), epoch))
                continue
            batches = spec.eval_batches(len(sampler), sampler.batch_size)
            rows = [
                spec.loss(self.agent, self.to_device(sampler.sample()))[1] for _ in range(batches)
            ]
            metrics.update(summarise_phase(rows, f"{spec.name}/eval"))
        return metrics

    def _save_reconstructions(self, test: Replay, rng: np.random.Generator, epoch: int) -> None:
        """Tokenizer reconstructions of 3 test segments of 10 frames (media/reconstructions)."""
        sampler = SegmentSampler(test, batch_size=3, segment_length=10, rng=rng)
        if sampler.rebuild() > 0:
            x = self.to_device(sampler.sample())["observations"]
            recon = self.agent.tokenizer.reconstruct(x.flatten(0, 1)).view_as(x)
            save_reconstructions(self.run.media / layout.RECONSTRUCTIONS, epoch, x, recon)

    def _inspect_imagination(self, batch: dict[str, torch.Tensor], epoch: int) -> dict[str, Any]:
        """One imagination rollout from test segments; returns, lengths, actions."""

        agent = self.agent
        rollout = agent.actor_critic.imagine(
            self.to_device(batch), agent.tokenizer, agent.world_model
        )
        b, h, k = rollout.tokens.shape
        frames = agent.tokenizer.decode(
            agent.tokenizer.codes_from_tokens(rollout.tokens.flatten(0, 1))
        )
        frames = (frames.float() * 255).round().to(torch.uint8).view(b, h, *frames.shape[1:]).cpu()
        actions = rollout.actions.cpu().numpy()
        rewards = rollout.rewards.float().cpu().numpy()
        dones = rollout.dones.cpu().numpy().astype(np.uint8)
        episodes = [Episode(frames[i].numpy(), actions[i], rewards[i], dones[i]) for i in range(b)]
        if self.cfg.run.save_media:
            base = (epoch - self.cfg.training.actor_critic.start_after_epochs - 1) * b
            for i, episode in enumerate(episodes):
                self.savers["imagination"].save(episode, base + i, epoch)
        histogram = np.bincount(actions.ravel(), minlength=self.num_actions) / actions.size
        return {
            "imagination/return_mean": float(np.mean([e.total_return for e in episodes])),
            "imagination/length_mean": float(np.mean([len(e) for e in episodes])),
            "imagination/action_histogram": [float(x) for x in histogram],
        }

    # ------------------------------------------------------------------ main loop

    def fit(self) -> dict[str, Any] | None:
        run = self.run
        if not self.retrain:  # first: a finished run of another config refuses too
            run.check_identity(self.identity)
        with run.lock():
            if self.retrain:
                removed = ", ".join(run.wipe()) or "nothing"
                self.log(f"--retrain: deleted {removed} in {run.path}; training from scratch")
                return self._fit()
            # finished = the run's own final state, not the COMPLETED marker (run_dir.py)
            why_not = run.finished_state(self.identity)
            if why_not is None:
                again = "" if run.is_complete() else "; COMPLETED written again, nothing retrained"
                run.mark_completed()
                self.log(
                    f"{run.path} is complete (final checkpoint and scores); nothing to do{again}"
                )
                return None
            if run.is_complete():
                self.log(f"WARNING: {run.completed} exists but {why_not}: resuming the run")
                run.completed.unlink()
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        start = self._start_or_resume()
        logger = self._open_logger(start)
        elapsed = training_seconds(read_metrics(run.metrics))  # kept epochs (rem status)
        try:
            for epoch in range(start, cfg.run.epochs + 1):
                maybe_kill("epoch_start", epoch)
                record = self.run_epoch(epoch)
                elapsed += record["time/epoch"]
                record["time/elapsed"] = elapsed
                logger.log(record)
                maybe_kill("epoch_end", epoch)
                if epoch % cfg.run.checkpoint_every == 0 or epoch == cfg.run.epochs:
                    start_time = time.perf_counter()
                    self._checkpoint(epoch)
                    self.log(
                        f"epoch {epoch}: checkpoint in {time.perf_counter() - start_time:.1f}s"
                    )
                    maybe_kill("after_checkpoint", epoch)
            scores = self._final_evaluation()
            logger.log(
                {
                    "epoch": cfg.run.epochs,
                    "final": True,
                    **{f"final/{k}": v for k, v in scores.items() if isinstance(v, (int, float))},
                }
            )
        except NonFiniteError as err:
            stop_on_failure(run, logger, err, resumed_from=start - 1)
            raise
        finally:
            logger.close()
            self.close()
        run.finish(scores)
        self.log(
            f"done: mean return {scores['mean_return']:.2f} over {scores['episodes']} episodes"
        )
        return scores

    def _start_or_resume(self) -> int:
        """Set up from the committed checkpoint if there is one (else from scratch), open the
        session in the manifest -> the first epoch to run."""
        cfg, run = self.cfg, self.run
        if read_latest(run.checkpoints) is None:  # never start over a run that had checkpoints
            run.check_fresh_start(min(cfg.run.checkpoint_every, cfg.run.epochs))
        clean_debris(run.checkpoints)
        start, state, folder = 1, None, None
        if read_latest(run.checkpoints) is not None:
            state, folder = load_checkpoint(
                run.checkpoints, map_location=self.device, fallback=True, warn=self.log
            )
        self.setup(folder / layout.REPLAY if folder is not None else None)
        if state is not None:
            self._load(state)
            start = state["epoch"] + 1
            self.log(f"resuming {run.path} from the checkpoint of epoch {state['epoch']}")
        extra = {
            "preset": self.preset,
            "overrides": self.overrides,
            "env_id": f"{self.game}NoFrameskip-v4",
            "perceptual_loss": cfg.tokenizer.perceptual_loss,
            **device_info(self.device),
        }
        run.start_session(self.identity, extra, from_epoch=start - 1)
        return start

    def _open_logger(self, start: int) -> MetricsLogger:
        cfg, run = self.cfg, self.run
        logger = MetricsLogger(
            run.metrics,
            tensorboard_dir=run.path / "tensorboard" if cfg.run.tensorboard else None,
            wandb_config={"name": f"{self.game}-{self.variant}-{self.seed}"}
            if cfg.run.wandb
            else None,
        )
        logger.truncate(start - 1)  # drop lines a killed process wrote after its checkpoint
        if note := previous_failures_note(run.path):
            self.log(note)  # a retried deterministic failure says so in every attempt's log
        return logger

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        """One epoch (collection, the components' training, an evaluation when due) -> its
        metrics record; `setup` first."""
        cfg = self.cfg
        record: dict[str, Any] = {"epoch": epoch}
        timer = time.perf_counter()
        if epoch <= cfg.collection.stop_after_epochs:
            record.update(self._collect(epoch))
        record["time/collection"] = time.perf_counter() - timer
        self.agent.train()
        for comp in self.components:
            t0 = time.perf_counter()
            if comp.spec.active(cfg, epoch):
                record.update(self._train_component(comp, epoch))
            comp.module.eval()
            record[f"time/{comp.name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if (
            epoch % cfg.evaluation.every == 0
            and epoch >= cfg.training.tokenizer.start_after_epochs
            and epoch < cfg.run.epochs
        ):
            record.update(self.evaluate(epoch))
        record["time/evaluation"] = time.perf_counter() - t0
        record["time/epoch"] = time.perf_counter() - timer
        self.log(_epoch_line(record, cfg.run.epochs))
        return record

    def _final_evaluation(self) -> dict[str, Any]:
        """Exactly `evaluation.final_episodes` test episodes with the test policy."""
        n = self.cfg.evaluation.final_episodes
        result = self._test_episodes(n, derived_seed(self.seed, SEED_EVAL, FINAL), keep=False)
        if len(result.returns) != n:
            raise RuntimeError(
                f"final evaluation returned {len(result.returns)} episodes, expected {n}"
            )
        return {
            "game": self.game,
            "variant": self.variant,
            "seed": self.seed,
            "episodes": n,
            "returns": [float(r) for r in result.returns],
            "lengths": [int(x) for x in result.lengths],
            "mean_return": result.mean_return,
            "std_return": result.std_return,
            "median_return": float(np.median(result.returns)),
            "mean_length": float(np.mean(result.lengths)),
            "epochs": self.cfg.run.epochs,
            "test_temperature": self.cfg.collection.test_temperature,
            "eval_seed": result.seed,
            "num_envs": result.num_envs,
            "eval_seconds": result.seconds,
        }


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, label in (
        ("collection/return", "train return"),
        ("tokenizer/train/loss", "tok"),
        ("world_model/train/loss", "wm"),
        ("actor_critic/train/loss", "ac"),
        ("test/return_mean", "test return"),
    ):
        if record.get(key) is not None:
            parts.append(f"{label} {record[key]:.4g}")
    parts.append(f"{record['time/epoch']:.1f}s")
    return " | ".join(parts)


def train(cfg: Config, **kwargs: Any) -> dict[str, Any] | None:
    """Train (or resume, or skip a complete) run; returns the scores (None if skipped)."""
    return Trainer(cfg, **kwargs).fit()
