import sys

from rem.results.commands import main

sys.exit(main())
