"""The data path, end to end, on an action-conditioned fake game (issue 17, point 1).

The real trainer (its setup, epoch loop, collector, replay, samplers and component training
steps) trains a tiny tokenizer and world model on `SpriteAtari`, whose next frame and reward
depend on the action. On fresh held-out steps the world model must then predict the next
frame's tokens clearly better with the true actions than with shuffled actions or by
repeating the previous frame, and the reward better than the majority class. A one-step
misalignment between stored frames and actions (collector, replay, sampler, token layout)
breaks the action dependence and fails this test.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_sprite import ACTIONS, SPRITE_ENV, SPRITE_EPISODE, SpriteAtari

import rem.training.trainer as trainer_module
from rem.config import load_config
from rem.envs.atari import wrap_env
from rem.evaluation.world_model_eval import collect_held_out, evaluate_world_model
from rem.policy import RandomPolicy
from rem.training.trainer import Trainer

COLLECT, COLLECT_EPOCHS = 200, 2  # env steps per epoch, epochs with collection
# (tokenizer steps, world-model steps) per epoch: the tokenizer learns the sprite's two
# looks in one epoch, then stays fixed so the world model learns one code in few steps.
SCHEDULE = [(40, 0), (0, 25), (0, 25), (0, 25), (0, 25)]
OVERRIDES = [
    f"collection.steps_per_epoch={COLLECT}",
    f"collection.stop_after_epochs={COLLECT_EPOCHS}",
    "collection.train_epsilon=0.0",
    "tokenizer.num_downsample_steps=4",  # 4x4 tokens: a 32x32 sprite quadrant is 2x2 tokens
    "training.tokenizer.start_after_epochs=0",
    "training.tokenizer.lr=3e-3",
    "training.world_model.start_after_epochs=0",
    "training.world_model.batch_size=16",
    "world_model.dropout=0.0",
    "training.world_model.lr=1e-2",  # tiny model, few steps
    "training.actor_critic.start_after_epochs=1000",  # the actor-critic is not under test
    "evaluation.every=1000",
    f"run.epochs={len(SCHEDULE)}",
    "run.save_media=false",
    "run.deterministic=true",
]


def sprite_env(game, *, train, seed, cfg=None):
    del game, cfg  # the sprite game's own protocol settings
    return wrap_env(SpriteAtari(), train=train, seed=seed, cfg=SPRITE_ENV)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(trainer, epoch records, figures on held-out steps) after the SCHEDULE."""
    patch = pytest.MonkeyPatch()
    patch.setattr(trainer_module, "make_env", sprite_env)
    patch.setattr(trainer_module, "num_actions", lambda game: len(ACTIONS))
    try:
        cfg = load_config("quick", None, OVERRIDES)
        cfg.env = SPRITE_ENV
        trainer = Trainer(
            cfg,
            game="Sprite",
            seed=0,
            variant="rem",
            run_dir=tmp_path_factory.mktemp("sprite"),
            log=lambda line: None,
        )
        trainer.setup()
        records = []
        for epoch, (tokenizer_steps, world_model_steps) in enumerate(SCHEDULE, start=1):
            cfg.training.tokenizer.steps_per_epoch = tokenizer_steps
            cfg.training.world_model.steps_per_epoch = world_model_steps
            records.append(trainer.run_epoch(epoch))
    finally:
        patch.undo()
    held_out = collect_held_out(
        sprite_env("Sprite", train=True, seed=12345), RandomPolicy(len(ACTIONS), seed=1), 300
    )
    figures = evaluate_world_model(
        trainer.agent.tokenizer,
        trainer.agent.world_model,
        held_out,
        device="cpu",
        imagination_horizon=cfg.actor_critic.imagination_horizon,
        batch_size=16,
        seed=0,
    )
    print(figures.to_json())  # shown with -s, and in the report when a check fails
    return trainer, records, figures


def test_the_trainer_fed_the_replay_and_trained_both_components(trained):
    trainer, records, _ = trained
    assert trainer.replay.num_steps == COLLECT * COLLECT_EPOCHS
    assert [r.get("collection/steps") for r in records] == [COLLECT] * COLLECT_EPOCHS + [None] * (
        len(SCHEDULE) - COLLECT_EPOCHS
    )
    for name, column in (("tokenizer", 0), ("world_model", 1)):
        trained_epochs = [f"{name}/train/loss" in r for r in records]
        assert trained_epochs == [steps[column] > 0 for steps in SCHEDULE], name
    episode = trainer.replay[trainer.replay.ids()[0]]
    assert len(episode) == SPRITE_EPISODE and episode.ended
    assert set(np.unique(episode.rewards)) == {0.0, 1.0}


def test_world_model_uses_the_actions(trained):
    _, _, figures = trained
    acc, changed = figures.token_accuracy, figures.token_accuracy_changed
    assert acc["model"] > acc["shuffled_actions"] + 0.1, acc
    assert acc["model"] > acc["repeat_previous"] + 0.1, acc
    assert changed["model"] > changed["shuffled_actions"] + 0.2, changed
    ce = figures.token_cross_entropy
    assert ce["model"] < min(ce["shuffled_actions"], ce["repeat_previous"]), ce


def test_world_model_predicts_the_reward(trained):
    _, _, figures = trained
    reward = figures.reward
    assert 0 < figures.reward_counts["1"] < figures.reward_counts["0"]  # both classes occur
    assert reward["model"]["accuracy"] > reward["majority"]["accuracy"] + 0.1, reward
    assert reward["model"]["f1"] > reward["majority"]["f1"] + 0.2, reward
