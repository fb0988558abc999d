"""IRIS (Micheli et al., ICLR 2023; eloialonso/iris) under REM's protocol: its networks and
losses (docs/protocol.md#iris). The actor-critic is rem.models.pixel_actor_critic's.

Interface (each class drives like its REM counterpart):

- `IrisTokenizerConfig`, `IrisWorldModelConfig` (config): typed configs, IRIS's defaults.
- `IrisTokenizer(cfg, perceptual)` (tokenizer): encode / decode / codes_from_tokens /
  compute_loss, as rem.models.tokenizer.Tokenizer; 16 tokens per 64x64 frame.
- `IrisWorldModel(cfg, tokenizer_cfg, num_actions)` (world_model): compute_loss(batch,
  tokenizer), forward(tokens (b, t, j)) -> (b, t*j, E), imagine_reset / imagine_act /
  imagine_frame for rem.models.imagination.ImaginationEnv, with a KV cache.
- `GPT`, `KVCache` (transformer): the causal transformer and its cache.
- `iris_param_groups(module, weight_decay)` (optim): minGPT's AdamW groups.
- `iris_parameter_counts(num_actions, ...)` (counts): per-component parameter counts.
"""

from rem.models.iris.config import IrisTokenizerConfig, IrisWorldModelConfig
from rem.models.iris.counts import iris_parameter_counts
from rem.models.iris.optim import iris_param_groups
from rem.models.iris.tokenizer import IrisTokenizer
from rem.models.iris.transformer import GPT, KVCache
from rem.models.iris.world_model import IrisImaginationState, IrisWorldModel

__all__ = [
    "GPT",
    "IrisImaginationState",
    "IrisTokenizer",
    "IrisTokenizerConfig",
    "IrisWorldModel",
    "IrisWorldModelConfig",
    "KVCache",
    "iris_param_groups",
    "iris_parameter_counts",
]
