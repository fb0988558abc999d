"""`python -m benchmarks [SUITE ...] [--quick] [--device auto|cpu|cuda] ...` (see --help)."""

from __future__ import annotations

import sys

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
