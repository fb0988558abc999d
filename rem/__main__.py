import sys

from rem.cli import main

sys.exit(main())
