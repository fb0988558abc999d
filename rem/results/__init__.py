"""Results: the paper's tables and figures and the reproduction reports, from score files and
run folders; independent of the agent (no torch).

One concept per subpackage:

- `stats`: pure functions on (runs x games) score arrays, no I/O: the score types, the
  input checks, human normalisation, rliable's aggregate metrics and the fast stratified
  bootstrap;
- `render`: tables (CSV, Markdown, LaTeX), figures, file names in reports;
- `protocols`: protocol records (what each side of a comparison ran) and their comparison;
- `reports`: each report computed into a data object, then rendered: the paper's studies,
  the reproduction report, the seed plan, the learning and pilot reports, agent comparisons.

`score_files` reads the published score files and reference tables, `settings` the
`results:` section of the workflow config, `commands` is `python -m rem.results`.

Python API: `load_scores`, `load_references`, `Scores`, `References`, `ScoreFileError`.
"""

__all__ = ["References", "ScoreFileError", "Scores", "load_references", "load_scores"]


def __getattr__(name: str):
    # Loaded on first use: the workflow imports rem.results modules at parse time and should
    # not pay for numpy.
    if name in __all__:
        from rem.results import score_files

        return getattr(score_files, name)
    raise AttributeError(f"module 'rem.results' has no attribute {name!r}")
