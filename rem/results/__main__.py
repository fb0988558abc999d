import sys

from rem.results.cli import main

sys.exit(main())
