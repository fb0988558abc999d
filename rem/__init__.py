"""REM: token-based world models with Parallel Observation Prediction, on Atari 100k."""

__version__ = "0.1.0"
