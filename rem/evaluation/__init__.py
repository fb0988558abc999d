"""The agent behind the `Policy` protocol (`rem.policy`), exactly-N-episode evaluation and
world-model evaluation."""

from rem.evaluation.evaluate import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate"]
