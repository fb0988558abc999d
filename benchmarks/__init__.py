"""Speed benchmarks for every hot path of the REM pipeline.

Run from the repository root: `python -m benchmarks --help`. Each benchmark prints the median
and spread over repeats, the peak memory and its configuration, as a table and as JSON
(`benchmarks/out/` by default). Benchmarks are scripts that print figures, not timed tests;
`tests/test_bench.py` only checks that `--quick` runs and writes valid JSON.
"""
