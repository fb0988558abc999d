"""The agent: tokenizer + world model + actor-critic, built from a `Config`.

`build_agent` picks the classes of the configured agent (`cfg.agent`, its registry entry
`rem.config.AGENTS`) and variant:
- tokenizer: by the entry's tokenizer architecture: REM's VQ `Tokenizer` ("rem") or IRIS's
  VQGAN-style one ("vqgan", rem.models.iris);
- world model: by the entry's world-model kind: "retnet" = `POPWorldModel`
  (cfg.world_model.pop) or `NoPOPWorldModel` (no-pop ablation); "transformer" = IRIS's GPT;
- actor-critic: `LSAC` (cfg.actor_critic.kind == "lsac") or `PixelActorCritic` ("pixel",
  the no-latent-ac ablation, and IRIS's own), imagining from the entry's context length;
- tokens per frame, and hence the world model's block size and the actor-critic's
  input size, derive from `tokenizer.num_downsample_steps` (never set by hand).
With `tokenizer.perceptual_loss` the LPIPS weights are located first, so a missing file fails
before anything is built or trained, naming the folder searched and `rem weights fetch`.
"""

from __future__ import annotations

from torch import nn

from rem.config import Config, TokenizerConfig, WorldModelConfig, check_actor_critic
from rem.models.actor_critic import LSAC, RecurrentActorCritic
from rem.models.lpips import LPIPS
from rem.models.pixel_actor_critic import PixelActorCritic
from rem.models.tokenizer import Tokenizer
from rem.models.vgg import VGG16Features
from rem.models.world_model import POPWorldModel
from rem.models.world_model_nopop import NoPOPWorldModel


class Agent(nn.Module):
    def __init__(
        self, tokenizer: Tokenizer, world_model: nn.Module, actor_critic: RecurrentActorCritic
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.world_model = world_model
        self.actor_critic = actor_critic

    @property
    def num_actions(self) -> int:
        return self.actor_critic.num_actions

    @property
    def device(self):
        return next(self.actor_critic.parameters()).device


def build_world_model(
    cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int, kind: str = "retnet"
) -> nn.Module:
    """REM's POP world model by default, the token-by-token one for the no-POP ablation;
    `kind="transformer"`: IRIS's GPT world model."""
    if kind == "transformer":
        from rem.models.adapters import build_iris_world_model

        return build_iris_world_model(cfg, tokenizer_cfg, num_actions)
    if kind != "retnet":
        raise ValueError(f"unknown world-model kind {kind!r}; expected retnet or transformer")
    model = POPWorldModel if cfg.pop else NoPOPWorldModel
    return model(cfg, tokenizer_cfg, num_actions)


def build_tokenizer(cfg: Config, perceptual: nn.Module | None) -> nn.Module:
    """REM's VQ tokenizer, or IRIS's VQGAN-style one (`cfg.spec.tokenizer == "vqgan"`)."""
    lpips = perceptual if cfg.tokenizer.perceptual_loss else None
    if cfg.spec.tokenizer == "vqgan":
        from rem.models.adapters import build_iris_tokenizer

        return build_iris_tokenizer(cfg.tokenizer, lpips)
    return Tokenizer(cfg.tokenizer, lpips)


def build_perceptual(cfg: Config, *, load_weights: bool = True) -> LPIPS:
    """Full-size LPIPS-VGG16 with the cached weights (see rem/weights.py).

    `load_weights=False` leaves random frozen tensors: only for restoring a checkpoint,
    which holds the LPIPS tensors in the tokenizer's state dict.
    """
    from rem.weights import require_perceptual_weights, weights_dir

    paths = (
        require_perceptual_weights(weights_dir(cfg.tokenizer.weights_dir)) if load_weights else None
    )
    lpips = LPIPS(VGG16Features(), dropout_in_train=cfg.tokenizer.lpips_dropout_in_train)
    if paths is not None:
        lpips.load_weights(*paths)
    return lpips


def build_actor_critic(cfg: Config, num_actions: int) -> RecurrentActorCritic:
    """LSAC, or the pixel actor-critic (the no-latent-ac ablation, IRIS's actor-critic),
    imagining from the agent's context length."""
    check_actor_critic(cfg.actor_critic)
    context = cfg.spec.context_length
    if cfg.actor_critic.kind == "pixel":
        return PixelActorCritic(cfg.actor_critic, num_actions, context_length=context)
    return LSAC(
        cfg.actor_critic,
        num_actions,
        code_dim=cfg.tokenizer.embed_dim,
        token_grid=64 // 2**cfg.tokenizer.num_downsample_steps,
        context_length=context,
    )


def build_agent(
    cfg: Config,
    num_actions: int,
    *,
    perceptual: nn.Module | None = None,
    load_perceptual_weights: bool = True,
) -> Agent:
    """Agent for the configured variant. `perceptual` replaces the LPIPS network (tests pass
    a tiny stand-in); otherwise, with `tokenizer.perceptual_loss`, the real one is built and
    its weights loaded (or required to exist) unless `load_perceptual_weights=False`."""
    if num_actions < 1:
        raise ValueError(f"num_actions must be >= 1, got {num_actions}")
    if cfg.tokenizer.perceptual_loss and perceptual is None:
        perceptual = build_perceptual(cfg, load_weights=load_perceptual_weights)
    tokenizer = build_tokenizer(cfg, perceptual)
    world_model = build_world_model(
        cfg.world_model, cfg.tokenizer, num_actions, cfg.spec.world_model
    )
    return Agent(tokenizer, world_model, build_actor_critic(cfg, num_actions))
