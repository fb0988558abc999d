"""Parameter counts of IRIS's own modules at its default config, beside ours.

IRIS's code is not a dependency: point `--iris` at a checkout of eloialonso/iris (its `src/`
folder is imported). Its LPIPS, video and env modules import torchvision, cv2 and gym, which
counting does not need (and torchvision does not import beside the CPU torch wheel), so those
imports get empty stand-ins; LPIPS is left out of both counts.

    git clone https://github.com/eloialonso/iris /tmp/iris
    python scripts/iris_param_counts.py --iris /tmp/iris
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

from rem.config import load_config
from rem.models.agent import build_agent

STAND_INS = ("torchvision", "cv2", "gym", "gym.spaces", "gym.wrappers", "envs",
             "envs.wrappers", "envs.world_model_env")  # fmt: skip


def iris_counts(src: Path, num_actions: int) -> dict[str, int]:
    """Trainable parameters of IRIS's tokenizer (no LPIPS), world model and actor-critic."""
    for name in STAND_INS:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchvision"].models = None  # type: ignore[attr-defined]
    sys.modules["envs.world_model_env"].WorldModelEnv = None  # type: ignore[attr-defined]
    sys.path.insert(0, str(src))
    from models.actor_critic import ActorCritic
    from models.tokenizer import Decoder, Encoder, EncoderDecoderConfig, Tokenizer
    from models.transformer import TransformerConfig
    from models.world_model import WorldModel

    # config/tokenizer/default.yaml and config/world_model/default.yaml
    coder = EncoderDecoderConfig(
        resolution=64, in_channels=3, z_channels=512, ch=64, ch_mult=[1, 1, 1, 1, 1],
        num_res_blocks=2, attn_resolutions=[8, 16], out_ch=3, dropout=0.0,
    )  # fmt: skip
    transformer = TransformerConfig(
        tokens_per_block=17, max_blocks=20, attention="causal", num_layers=10, num_heads=4,
        embed_dim=256, embed_pdrop=0.1, resid_pdrop=0.1, attn_pdrop=0.1,
    )  # fmt: skip
    modules = {
        "tokenizer": Tokenizer(512, 512, Encoder(coder), Decoder(coder), with_lpips=False),
        "world_model": WorldModel(512, num_actions, transformer),
        "actor_critic": ActorCritic(num_actions, use_original_obs=False),
    }
    return {k: sum(p.numel() for p in m.parameters()) for k, m in modules.items()}


def our_counts(num_actions: int) -> dict[str, int]:
    """Trainable parameters of ours (the frozen LPIPS/VGG16 weights are not trainable)."""
    agent = build_agent(load_config("iris", None, []), num_actions, load_perceptual_weights=False)
    return {
        k: sum(p.numel() for p in getattr(agent, k).parameters() if p.requires_grad)
        for k in ("tokenizer", "world_model", "actor_critic")
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iris", type=Path, required=True, help="a checkout of eloialonso/iris")
    p.add_argument("--actions", type=int, nargs="+", default=[18, 4])
    args = p.parse_args()
    if not (args.iris / "src" / "models" / "world_model.py").is_file():
        p.error(f"{args.iris} is not a checkout of eloialonso/iris (no src/models/world_model.py)")
    print(f"{'component':<14}{'actions':>8}{'IRIS code':>14}{'ours':>14}  equal")
    ok = True
    for a in args.actions:
        theirs, ours = iris_counts(args.iris / "src", a), our_counts(a)
        for k in theirs:
            ok &= theirs[k] == ours[k]
            print(f"{k:<14}{a:>8}{theirs[k]:>14,}{ours[k]:>14,}  {theirs[k] == ours[k]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
