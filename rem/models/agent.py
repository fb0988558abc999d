"""The agent: tokenizer + world model + actor-critic, built from a `Config`.

`build_agent` picks the classes of the configured variant:
- world model: `POPWorldModel` (cfg.world_model.pop) or `NoPOPWorldModel` (no-pop ablation);
- actor-critic: `LSAC` (cfg.actor_critic.kind == "lsac") or `PixelActorCritic` ("pixel",
  the no-latent-ac ablation);
- tokenizer: tokens per frame, and hence the world model's block size and the actor-critic's
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
from rem.models.world_model import POPWorldModel, TokenWorldModel
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
    cfg: WorldModelConfig, tokenizer_cfg: TokenizerConfig, num_actions: int
) -> TokenWorldModel:
    """POP world model by default, the token-by-token one for the no-POP ablation."""
    model = POPWorldModel if cfg.pop else NoPOPWorldModel
    return model(cfg, tokenizer_cfg, num_actions)


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
    """LSAC, or the pixel actor-critic for the no-latent-ac ablation."""
    check_actor_critic(cfg.actor_critic)
    context = cfg.world_model.context_length
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
    tokenizer = Tokenizer(cfg.tokenizer, perceptual if cfg.tokenizer.perceptual_loss else None)
    world_model = build_world_model(cfg.world_model, cfg.tokenizer, num_actions)
    return Agent(tokenizer, world_model, build_actor_critic(cfg, num_actions))
