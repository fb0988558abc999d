"""IRIS's optimiser parameter groups (docs/protocol.md#iris).

    groups = iris_param_groups(world_model, weight_decay=0.01)
    torch.optim.AdamW(groups, lr=1e-4)          # IRIS's world-model optimiser
    torch.optim.Adam(tokenizer.parameters())     # tokenizer and actor-critic: plain Adam

minGPT's rule (IRIS's `configure_optimizer`): weights of Linear and Conv1d layers decay;
biases, LayerNorm and Embedding weights (position embeddings included) do not; every
parameter must fall in exactly one group, else it is an error (a new layer type needs a rule).
"""

from __future__ import annotations

from torch import nn

_DECAY = (nn.Linear, nn.Conv1d)
_NO_DECAY = (nn.LayerNorm, nn.Embedding)


def iris_param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups of `module`'s trainable parameters: [decayed, not decayed], each in
    sorted parameter-name order (as minGPT)."""
    decay: set[str] = set()
    no_decay: set[str] = set()
    for module_name, sub in module.named_modules():
        for name, _ in sub.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if name.endswith("bias"):
                no_decay.add(full)
            elif name.endswith("weight") and isinstance(sub, _DECAY):
                decay.add(full)
            elif name.endswith("weight") and isinstance(sub, _NO_DECAY):
                no_decay.add(full)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    unsorted = params.keys() - decay - no_decay
    if unsorted:
        raise ValueError(
            f"parameters {sorted(unsorted)} are in neither weight-decay group; add their layer "
            "type to rem.models.iris.optim"
        )
    return [
        {"params": [params[n] for n in sorted(decay) if n in params], "weight_decay": weight_decay},
        {"params": [params[n] for n in sorted(no_decay) if n in params], "weight_decay": 0.0},
    ]
