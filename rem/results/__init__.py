"""Results: score files, human normalisation, rliable metrics with a fast stratified bootstrap,
the paper's tables and figures, and the reproduction report of the pipeline's own runs.

Entry points: `python -m rem.results paper|report` (or `rem results ...`); Python API:
`load_scores`, `load_references`, `aggregate_intervals`, `profile_intervals`,
`improvement_intervals`, `run_paper`, `write_report`.
"""

__all__ = ["References", "ScoreFileError", "Scores", "load_references", "load_scores"]


def __getattr__(name: str):
    # Loaded on first use: `rem status` imports rem.results.runs and should not pay for numpy.
    if name in __all__:
        from rem.results import scores

        return getattr(scores, name)
    raise AttributeError(f"module 'rem.results' has no attribute {name!r}")
