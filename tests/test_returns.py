"""Lambda-returns (docs/protocol.md#returns-and-losses) against a hand computation."""

from __future__ import annotations

import pytest
import torch

from rem.models.returns import lambda_returns


def test_three_steps_with_a_done_in_the_middle():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    values = torch.tensor([[10.0, 20.0, 30.0], [10.0, 20.0, 30.0]])
    dones = torch.tensor([[0, 1, 0], [0, 0, 0]])
    g = lambda_returns(rewards, values, dones, gamma=0.9, lam=0.5)
    # row 0: G2 = V2 = 30; G1 = 2 (done cuts the bootstrap);
    #        G0 = 1 + 0.9 * (0.5 * 20 + 0.5 * 2) = 10.9
    # row 1: G1 = 2 + 0.9 * (0.5 * 30 + 0.5 * 30) = 29; G0 = 1 + 0.9 * (0.5 * 20 + 0.5 * 29) = 23.05
    torch.testing.assert_close(g, torch.tensor([[10.9, 2.0, 30.0], [23.05, 29.0, 30.0]]))


def test_lambda_one_and_zero_limits():
    r = torch.tensor([[1.0, 1.0, 1.0]])
    v = torch.tensor([[5.0, 7.0, 9.0]])
    d = torch.zeros(1, 3)
    # lam = 0: one-step TD targets
    torch.testing.assert_close(lambda_returns(r, v, d, 0.5, 0.0), torch.tensor([[4.5, 5.5, 9.0]]))
    # lam = 1: discounted Monte Carlo bootstrapped from the last value
    torch.testing.assert_close(
        lambda_returns(r, v, d, 0.5, 1.0), torch.tensor([[1 + 0.5 + 0.25 * 9, 1 + 0.5 * 9, 9.0]])
    )


def test_no_gradient_and_shape_checks():
    v = torch.ones(2, 4, requires_grad=True)
    g = lambda_returns(torch.ones(2, 4), v, torch.zeros(2, 4), 0.99, 0.95)
    assert not g.requires_grad
    with pytest.raises(ValueError, match="shape"):
        lambda_returns(torch.ones(2, 4), torch.ones(2, 3), torch.zeros(2, 4), 0.99, 0.95)
