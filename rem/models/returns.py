"""Lambda-returns for the imagined rollouts (docs/protocol.md#returns-and-losses)."""

from __future__ import annotations

import torch

from rem.models.precision import at_least_fp32


@torch.no_grad()
def lambda_returns(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """rewards, values, dones: (b, t) -> returns (b, t), no gradient.

    G_{t-1} = V_{t-1}; for k < t-1:
    G_k = r_k + gamma * (1 - d_k) * ((1 - lam) * V_{k+1} + lam * G_{k+1}).
    A done at k cuts the bootstrap from k+1 on (the rollout itself continues).
    """
    if not (rewards.shape == values.shape == dones.shape) or rewards.dim() != 2:
        raise ValueError(
            f"rewards, values, dones must share a (b, t) shape, got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(dones.shape)}"
        )
    values = at_least_fp32(values)  # float64 values (a float64 model) stay float64
    rewards, dones = rewards.to(values.dtype), dones.to(values.dtype)
    returns = torch.empty_like(values)
    returns[:, -1] = values[:, -1]
    for k in range(values.shape[1] - 2, -1, -1):
        bootstrap = (1.0 - lam) * values[:, k + 1] + lam * returns[:, k + 1]
        returns[:, k] = rewards[:, k] + gamma * (1.0 - dones[:, k]) * bootstrap
    return returns
