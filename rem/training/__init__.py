"""Training runs: epoch loop, checkpoints and resume, run folder, metrics and media."""
