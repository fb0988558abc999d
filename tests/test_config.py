"""Config loading: presets, variants, dotted overrides and their validation."""

from __future__ import annotations

import dataclasses

import pytest

from rem.config import Config, ConfigError, available, config_from_dict, load_config, parse_override


def test_paper_preset_equals_dataclass_defaults():
    # paper.yaml spells out the cheat sheet; the dataclass defaults must be the same values.
    assert load_config("paper").to_dict() == Config().to_dict()


def test_paper_preset_is_the_cheat_sheet():
    cfg = load_config("paper")
    assert cfg.run.epochs == 600 and cfg.run.checkpoint_every == 50
    assert (cfg.collection.steps_per_epoch, cfg.collection.stop_after_epochs) == (200, 500)
    tok, wm, ac = cfg.training.tokenizer, cfg.training.world_model, cfg.training.actor_critic
    assert (tok.start_after_epochs, wm.start_after_epochs, ac.start_after_epochs) == (5, 25, 50)
    assert (tok.steps_per_epoch, wm.steps_per_epoch, ac.steps_per_epoch) == (200, 200, 100)
    assert (tok.batch_size, wm.batch_size, ac.batch_size) == (128, 64, 128)
    assert (tok.lr, wm.lr, ac.lr) == (1e-4, 2e-4, 1e-4)
    assert (tok.max_grad_norm, wm.max_grad_norm, ac.max_grad_norm) == (10.0, 100.0, 3.0)
    assert (tok.weight_decay, wm.weight_decay, ac.weight_decay) == (0.01, 0.05, 0.01)
    assert (cfg.evaluation.every, cfg.evaluation.episodes, cfg.evaluation.num_envs) == (10, 16, 8)
    assert cfg.evaluation.final_episodes == 100
    assert (cfg.collection.train_temperature, cfg.collection.train_epsilon) == (1.0, 0.01)
    assert cfg.collection.test_temperature == 0.5
    assert cfg.tokens_per_frame == 64 and cfg.tokenizer.perceptual_loss


def test_quick_preset_keeps_every_phase_and_no_perceptual_loss():
    cfg = load_config("quick")
    assert not cfg.tokenizer.perceptual_loss
    assert cfg.run.device == "cpu"
    # every phase runs: collection, the three components, an evaluation and a checkpoint
    for comp in (cfg.training.tokenizer, cfg.training.world_model, cfg.training.actor_critic):
        assert comp.start_after_epochs < cfg.run.epochs and comp.steps_per_epoch > 0
    assert cfg.evaluation.every <= cfg.run.epochs and cfg.run.checkpoint_every < cfg.run.epochs


@pytest.mark.parametrize(
    "variant",
    ["rem", "no-pop", "separate-wm-embeddings", "4x4-tokenizer", "no-latent-ac", "no-action-input"],
)
def test_every_variant_loads(variant):
    assert variant in available("variants")
    load_config("paper", variant)
    load_config("quick", variant)


def test_variant_effects():
    assert load_config("paper", "4x4-tokenizer").tokens_per_frame == 16
    assert load_config("paper", "no-pop").world_model.pop is False
    assert load_config("paper", "no-latent-ac").actor_critic.kind == "pixel"
    assert load_config("paper", "no-action-input").actor_critic.include_action_inputs is False
    assert load_config("paper", "separate-wm-embeddings").world_model.shared_embeddings is False


def test_overrides_apply_after_variant_and_coerce_types():
    cfg = load_config(
        "paper",
        "no-pop",
        ["world_model.num_layers=3", "training.world_model.lr=1e-3", "world_model.pop=true"],
    )
    assert cfg.world_model.num_layers == 3 and cfg.world_model.pop is True
    assert cfg.training.world_model.lr == pytest.approx(1e-3) and isinstance(
        cfg.training.world_model.lr, float
    )
    # an int is accepted where a float is expected
    assert load_config("paper", None, ["actor_critic.gamma=1"]).actor_critic.gamma == 1.0


def test_parse_override_nests():
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("world_model.num_layers")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("world_model.num_layerz=3", "unknown key 'world_model.num_layerz'.*num_layers"),
        ("wrld_model.num_layers=3", "unknown key 'wrld_model'"),
        ("world_model.num_layers=three", "world_model.num_layers must be int"),
        ("world_model.num_layers=2.5", "world_model.num_layers must be int"),
        ("world_model.pop=1", "world_model.pop must be bool"),
        ("run.device=3", "run.device must be str"),
        ("world_model=3", "world_model must be a mapping"),
        ("actor_critic.kind=transformer", "actor_critic.kind must be 'lsac' or 'pixel'"),
        ("run.epochs=0", "run.epochs must be >= 1"),
        ("world_model.context_length=10", "context_length must be smaller"),
        ("world_model.num_heads=3", "divisible"),
        ("world_model.embed_dim=128", "shared_embeddings needs"),
        ("evaluation.final_episodes=0", "final_episodes"),
        ("run.torch_threads=-1", "run.torch_threads must be >= 0"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("paper", None, [override])


def test_unknown_preset_and_variant_list_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*paper.*quick"):
        load_config("fast")
    with pytest.raises(ConfigError, match="unknown variant 'nopop'.*no-pop"):
        load_config("paper", "nopop")


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("world_model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def test_config_round_trips_through_dict():
    cfg = load_config("quick", "4x4-tokenizer", ["training.tokenizer.lr=3e-4"])
    again = config_from_dict(cfg.to_dict())
    assert dataclasses.asdict(again) == dataclasses.asdict(cfg)


def test_retired_key_at_its_only_value_is_dropped_any_other_value_refused():
    """Older manifests hold `run.compile: false`; it changes nothing and loads. Asking for
    the removed behaviour is an error that says the key is gone."""
    saved = Config().to_dict()
    saved["run"]["compile"] = False
    assert config_from_dict(saved) == Config()
    with pytest.raises(ConfigError, match="run.compile was removed"):
        load_config("quick", overrides=["run.compile=true"])


def test_replay_bounds_are_checked():
    cfg = load_config("quick", overrides=["collection.replay_max_steps=5000"])
    assert cfg.collection.replay_max_steps == 5000 and cfg.collection.replay_max_gib == 0.0
    with pytest.raises(ConfigError, match="replay_max_steps and collection.replay_max_gib"):
        load_config("quick", overrides=["collection.replay_max_gib=-1"])
