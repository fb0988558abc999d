"""Results: score files, human normalisation, rliable metrics with a fast stratified bootstrap,
the paper's tables and figures, and the reproduction report of the pipeline's own runs.

Entry points: `python -m rem.results paper|report` (or `rem results ...`); Python API:
`load_scores`, `load_references`, `aggregate_intervals`, `profile_intervals`,
`improvement_intervals`, `run_paper`, `write_report`.
"""

from rem.results.scores import References, ScoreFileError, Scores, load_references, load_scores

__all__ = ["References", "ScoreFileError", "Scores", "load_references", "load_scores"]
