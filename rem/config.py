"""Typed run configuration: dataclasses, YAML presets, variant files and dotted overrides.

The dataclass defaults are the paper protocol (docs/protocol.md);
`config/presets/paper.yaml` spells the same values out so a reader sees them in one place.
A run's config is resolved as: preset -> variant override file -> command-line overrides
(`world_model.num_layers=3`). Unknown keys and values of the wrong type fail with a message
that names the key and the file it came from.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the key and the fix."""


@dataclass
class EnvConfig:
    """Atari protocol (docs/protocol.md#environment)."""

    frame_skip: int = 4
    size: int = 64
    train_max_raw_frames: int = 20_000  # the time limit counts raw frames, not agent steps
    test_max_raw_frames: int = 108_000
    train_noop_max: int = 30
    test_noop_max: int = 1  # the test env always takes exactly one no-op


@dataclass
class TokenizerConfig:
    """VQ tokenizer (docs/protocol.md#tokenizer). Tokens per frame derive from `num_downsample_steps`."""

    vocab_size: int = 512
    embed_dim: int = 256
    base_channels: int = 32
    z_channels: int = 256
    num_downsample_steps: int = 3  # 3 -> 8x8 tokens, 4 -> 4x4 tokens (ablation)
    perceptual_loss: bool = True
    lpips_dropout_in_train: bool = True  # as the reference (faithful: active)
    weights_dir: str = "~/.cache/rem/weights"  # VGG16 + LPIPS lin weights; env REM_WEIGHTS_DIR wins
    norm_groups: int = 32  # IRIS's tokenizer only: its GroupNorm groups (IRIS: 32)

    @property
    def tokens_per_frame(self) -> int:
        side = 64 // 2**self.num_downsample_steps
        return side * side


@dataclass
class WorldModelConfig:
    """POP-RetNet world model (docs/protocol.md#world-model)."""

    pop: bool = True  # False = the no-POP ablation (token-by-token RetNet)
    num_layers: int = 5
    num_heads: int = 4
    embed_dim: int = 256
    ffn_dim: int = 1024
    dropout: float = 0.1
    max_blocks: int = 10
    blocks_per_chunk: int = 3
    context_length: int = 2
    shared_embeddings: bool = True  # False = separate-wm-embeddings ablation
    shared_prediction_token: bool = False
    sample_imagined_reward_done: bool = True  # faithful: sample (docs/protocol.md#imagination)
    no_pop_train_action_emb: bool = True  # fixes a reference bug (docs/protocol.md#changed)


@dataclass
class ActorCriticConfig:
    """Actor-critic (docs/protocol.md#actor-critic)."""

    kind: str = "lsac"  # "lsac" (latent) or "pixel" (no-latent-ac ablation)
    include_action_inputs: bool = True  # False = no-action-input ablation
    hidden_dim: int = 512
    burn_in: int = 20
    # "reference" (faithful) = an action step after burn-in frame i only when
    # (i + 1) % tokens_per_frame == 0 (never at 8x8, after frame 15 at 4x4); "never";
    # "every_frame" (what the reference meant). docs/protocol.md#burn-in.
    burnin_actions: str = "reference"
    imagination_horizon: int = 10
    gamma: float = 0.995
    lam: float = 0.95
    entropy_weight: float = 0.001


@dataclass
class ComponentTrainingConfig:
    """Schedule and optimiser of one component (docs/protocol.md#budget-and-schedule)."""

    start_after_epochs: int
    steps_per_epoch: int
    batch_size: int
    lr: float
    max_grad_norm: float
    weight_decay: float


def _tok_training() -> ComponentTrainingConfig:
    return ComponentTrainingConfig(5, 200, 128, 1e-4, 10.0, 0.01)


def _wm_training() -> ComponentTrainingConfig:
    return ComponentTrainingConfig(25, 200, 64, 2e-4, 100.0, 0.05)


def _ac_training() -> ComponentTrainingConfig:
    return ComponentTrainingConfig(50, 100, 128, 1e-4, 3.0, 0.01)


@dataclass
class TrainingConfig:
    tokenizer: ComponentTrainingConfig = field(default_factory=_tok_training)
    world_model: ComponentTrainingConfig = field(default_factory=_wm_training)
    actor_critic: ComponentTrainingConfig = field(default_factory=_ac_training)


@dataclass
class CollectionConfig:
    steps_per_epoch: int = 200
    stop_after_epochs: int = 500
    train_temperature: float = 1.0
    train_epsilon: float = 0.01
    test_temperature: float = 0.5
    # Replay bounds, oldest episodes evicted first (never the newest); 0 = keep everything,
    # the paper protocol (100k frames of 64x64 RGB are about 1.2 GB).
    replay_max_steps: int = 0
    replay_max_gib: float = 0.0


@dataclass
class EvaluationConfig:
    every: int = 10
    episodes: int = 16
    final_episodes: int = 100  # stops at exactly N (the reference overshoots to 104)
    num_envs: int = 8


@dataclass
class RunConfig:
    epochs: int = 600
    checkpoint_every: int = 50
    device: str = "auto"  # auto = cuda if available
    bf16: bool = False  # autocast on CUDA
    tf32: bool = True
    deterministic: bool = False
    torch_threads: int = 0  # intra-op CPU threads; 0 = torch's default (one per core)
    save_media: bool = True
    # Every N epochs keep the checkpoint's state.pt under RUN_DIR/snapshots/ (a run folder
    # `rem wm-eval` reads: the pilot scores its world model at epochs 30, 50...); 0 = none.
    snapshot_every: int = 0
    tensorboard: bool = False
    wandb: bool = False


@dataclass
class Config:
    agent: str = "rem"  # a name of AGENTS (below): which agent's models and data path
    env: EnvConfig = field(default_factory=EnvConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def tokens_per_frame(self) -> int:
        return self.tokenizer.tokens_per_frame

    @property
    def spec(self) -> AgentSpec:
        """This run's agent (the registry entry named by `agent`)."""
        return agent_spec(self.agent)


# ----------------------------------------------------------------------------- agents


@dataclass(frozen=True)
class AgentSpec:
    """What makes an agent an agent, beside its preset's numbers (README: "Add an agent").

    world_model: "retnet" (REM: POP, or token by token with `world_model.pop: false`) or
    "transformer" (IRIS: a GPT with a KV cache, token by token); tokenizer: "rem"
    (REM's VQ encoder/decoder) or "vqgan" (IRIS's, with attention); actor_critics: the
    `actor_critic.kind` values it accepts (the first is its own); context_length: real frames
    an imagined rollout starts from (`world_model.context_length` must equal it); sampler:
    "segments" (uniform over every (episode, start) pair, so longer episodes are drawn more,
    REM) or "episodes" (an episode uniformly, then a start in it, IRIS); component_context:
    the real steps beyond the first that every world-model and actor-critic segment must
    hold (None: world_model.context_length, REM; 0: IRIS, whose segments need one real step);
    optimizers: "rem" (AdamW, decay on Linear weights) or "iris" (Adam for the tokenizer
    and actor-critic, AdamW with minGPT's no-decay groups for the world model); presets:
    (paper, quick) preset names; published: its score file in results/published/.
    """

    name: str
    world_model: str
    tokenizer: str
    actor_critics: tuple[str, ...]
    context_length: int
    sampler: str
    component_context: int | None
    optimizers: str
    presets: tuple[str, str]
    published: str


AGENTS: dict[str, AgentSpec] = {
    "rem": AgentSpec(
        "rem", "retnet", "rem", ("lsac", "pixel"), 2, "segments", None, "rem",
        ("paper", "quick"), "REM.json",
    ),
    "iris": AgentSpec(
        "iris", "transformer", "vqgan", ("pixel",), 1, "episodes", 0, "iris",
        ("iris", "iris_quick"), "IRIS.json",
    ),
}  # fmt: skip
SAMPLER_MODES = ("segments", "episodes")


def agent_spec(name: str) -> AgentSpec:
    """The registry entry of agent `name`; ConfigError lists the known ones."""
    if name not in AGENTS:
        raise ConfigError(
            f"unknown agent {name!r}; known agents: {', '.join(AGENTS)} (rem/config.py AGENTS)"
        )
    return AGENTS[name]


# ----------------------------------------------------------------------------- locations


def config_dir() -> Path:
    """The repository's `config/` folder (or `$REM_CONFIG_DIR`)."""
    env = os.environ.get("REM_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "config"
    if not (path / "presets").is_dir():
        raise ConfigError(
            f"config folder {path} has no presets/ folder; run from a clone of the repository "
            "(pip install -e .) or set REM_CONFIG_DIR to its config/ folder"
        )
    return path


def available(kind: str) -> list[str]:
    """Names of the presets (`kind="presets"`) or variants (`kind="variants"`)."""
    return sorted(p.stem for p in (config_dir() / kind).glob("*.yaml"))


def _named_file(kind: str, name: str | Path) -> Path:
    path = Path(name)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise ConfigError(f"{kind[:-1]} file {path} does not exist")
        return path
    path = config_dir() / kind / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown {kind[:-1]} {str(name)!r}: no file {path}. "
            f"Known {kind}: {', '.join(available(kind))}"
        )
    return path


# ----------------------------------------------------------------------------- merging


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, typ: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None:
            return None
        typ = args[0]
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above appear in the dataclasses
        return value
    raise ConfigError(f"{source}: {key} must be {typ.__name__}, got {value!r}")


# Keys that no longer exist -> how to say the same thing now (a clear error, never silence).
_REPLACED_KEYS = {
    "actor_critic.burnin_feed_actions": (
        "actor_critic.burnin_feed_actions was replaced by actor_critic.burnin_actions "
        "(reference | never | every_frame): burnin_feed_actions=false -> burnin_actions=never, "
        "burnin_feed_actions=true -> burnin_actions=every_frame; the default, reference, feeds "
        "the reference code's burn-in action steps (docs/protocol.md#burn-in)"
    ),
}

# Keys that were removed -> the only value they ever took effect with. Older run manifests
# and checkpoints hold them at that value, which changes nothing, so it is accepted (and
# dropped); any other value is an error that says the key is gone.
RETIRED_KEYS: dict[str, Any] = {
    "run.compile": False,  # torch.compile was measured and not kept (README, Performance)
}


def _merge(obj: Any, data: dict[str, Any], source: str, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {data!r}"
        )
    types_ = _field_types(type(obj))
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in _REPLACED_KEYS:
            raise ConfigError(f"{source}: {_REPLACED_KEYS[dotted]}")
        if dotted in RETIRED_KEYS:
            if value != RETIRED_KEYS[dotted]:
                raise ConfigError(
                    f"{source}: {dotted} was removed (it only ever worked as "
                    f"{RETIRED_KEYS[dotted]!r}); delete it"
                )
            continue
        if key not in types_:
            raise ConfigError(
                f"{source}: unknown key {dotted!r}; valid keys here: {', '.join(sorted(types_))}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, source, f"{dotted}.")
        else:
            setattr(obj, key, _coerce(value, types_[key], dotted, source))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of config sections, got {type(data).__name__}"
        )
    return data


def parse_override(text: str) -> dict[str, Any]:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}, value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw else ""
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


BURNIN_ACTIONS = ("reference", "never", "every_frame")  # docs/protocol.md#burn-in
ACTOR_CRITIC_KINDS = ("lsac", "pixel")


def check_actor_critic(cfg: ActorCriticConfig) -> None:
    """The named choices of an actor-critic config (also checked by the models, which may be
    built from a config that never went through `validate`)."""
    if cfg.burnin_actions not in BURNIN_ACTIONS:
        raise ConfigError(
            "actor_critic.burnin_actions must be reference, never or every_frame, got "
            f"{cfg.burnin_actions!r}"
        )
    if cfg.kind not in ACTOR_CRITIC_KINDS:
        raise ConfigError(f"actor_critic.kind must be 'lsac' or 'pixel', got {cfg.kind!r}")


def check_shared_embeddings(tokenizer: TokenizerConfig, world_model: WorldModelConfig) -> None:
    """Shared embeddings feed the tokenizer's code vectors to the world model as its inputs."""
    if world_model.shared_embeddings and tokenizer.embed_dim != world_model.embed_dim:
        raise ConfigError(
            "world_model.shared_embeddings needs tokenizer.embed_dim == world_model.embed_dim "
            f"(got {tokenizer.embed_dim} and {world_model.embed_dim}); set "
            "world_model.shared_embeddings=false or make the widths equal"
        )


def check_agent(cfg: Config) -> None:
    """The config fits its agent: an actor-critic it has, its context length."""
    spec = agent_spec(cfg.agent)
    if cfg.actor_critic.kind not in spec.actor_critics:
        raise ConfigError(
            f"agent {spec.name} has no actor_critic.kind {cfg.actor_critic.kind!r}; "
            f"use {' or '.join(spec.actor_critics)}"
        )
    if cfg.world_model.context_length != spec.context_length:
        raise ConfigError(
            f"agent {spec.name} imagines from {spec.context_length} real frame(s): "
            f"world_model.context_length must be {spec.context_length}, "
            f"got {cfg.world_model.context_length}"
        )
    if spec.world_model != "retnet" and not cfg.world_model.pop:
        raise ConfigError(
            f"world_model.pop=false is REM's no-POP ablation; agent {spec.name}'s "
            f"{spec.world_model} world model has no POP switch: delete the key"
        )


def validate(cfg: Config) -> None:
    """Cross-field checks that a type check cannot express."""
    check_actor_critic(cfg.actor_critic)
    if not 1 <= cfg.tokenizer.num_downsample_steps <= 5:
        raise ConfigError(
            "tokenizer.num_downsample_steps must be in 1..5 (3 -> 8x8 tokens, 4 -> 4x4)"
        )
    check_shared_embeddings(cfg.tokenizer, cfg.world_model)
    if cfg.world_model.embed_dim % cfg.world_model.num_heads:
        raise ConfigError("world_model.embed_dim must be divisible by world_model.num_heads")
    if cfg.world_model.context_length >= cfg.world_model.max_blocks:
        raise ConfigError("world_model.context_length must be smaller than world_model.max_blocks")
    check_agent(cfg)
    if cfg.run.torch_threads < 0:
        raise ConfigError("run.torch_threads must be >= 0 (0 = torch's default)")
    if cfg.run.snapshot_every < 0:
        raise ConfigError("run.snapshot_every must be >= 0 (0 = no snapshots)")
    for name in ("epochs", "checkpoint_every"):
        if getattr(cfg.run, name) < 1:
            raise ConfigError(f"run.{name} must be >= 1")
    if cfg.collection.replay_max_steps < 0 or cfg.collection.replay_max_gib < 0:
        raise ConfigError(
            "collection.replay_max_steps and collection.replay_max_gib must be >= 0 (0 = no bound)"
        )
    if cfg.evaluation.final_episodes < 1 or cfg.evaluation.num_envs < 1:
        raise ConfigError("evaluation.final_episodes and evaluation.num_envs must be >= 1")


def load_config(
    preset: str | Path = "paper",
    variant: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Resolve preset -> variant -> overrides into a validated `Config`."""
    cfg = Config()
    path = _named_file("presets", preset)
    _merge(cfg, _read_yaml(path), str(path))
    preset_agent = cfg.agent
    if variant is not None:
        path = _named_file("variants", variant)
        _merge(cfg, _read_yaml(path), str(path))
        if cfg.agent != preset_agent:
            presets = " or ".join(agent_spec(cfg.agent).presets)
            raise ConfigError(
                f"variant {variant} is agent {cfg.agent}'s but preset {preset} is agent "
                f"{preset_agent}'s: use --preset {presets} (README: Add an agent)"
            )
    for text in overrides:
        _merge(cfg, parse_override(text), f"override {text!r}")
    validate(cfg)
    return cfg


def preset_agent(preset: str | Path) -> str:
    """The agent a preset is for (its `agent:`, default rem): the default variant of a run
    (each agent's own variant file, config/variants/<agent>.yaml, is the agent as published)."""
    data = _read_yaml(_named_file("presets", preset))
    return str(data.get("agent", "rem"))


def config_from_dict(data: dict[str, Any], source: str = "saved config") -> Config:
    """Rebuild a `Config` from `to_dict()` output (run manifests, checkpoints)."""
    cfg = Config()
    _merge(cfg, data, source)
    validate(cfg)
    return cfg
