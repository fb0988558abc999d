"""Policies and test-episode evaluation."""

from rem.evaluation.evaluate import EvalResult, evaluate
from rem.evaluation.policy import Policy, RandomPolicy

__all__ = ["EvalResult", "Policy", "RandomPolicy", "evaluate"]
