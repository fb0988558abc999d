"""Learning diagnostics: measurements that say why an agent does or does not learn.

Each module is one `rem diagnose` tool (also `python -m rem.diagnostics.<module>`):
- `wm_fit`: a fresh world model on a run's frames with the tokenizer frozen (and a synthetic
  copy task), held-out next-frame token accuracy against repeating the previous frame;
- `wm_map`: the same measurement over a grid of world-model shapes, token grids and learning
  rates on the same frames: updates and CPU-time needed to beat repeating the previous frame;
- `tokenizer_drift`: the share of token ids of the same frames that move between checkpoints;
- `game_probe`: random policy against constant actions per game (which games show early
  learning).
"""

import sys
from collections.abc import Callable

# `rem diagnose NAME` -> module of this package.
TOOLS = {
    "wm-fit": "wm_fit",
    "wm-map": "wm_map",
    "tokenizer-drift": "tokenizer_drift",
    "game-probe": "game_probe",
}


def one_line_errors(
    run: Callable[[list[str] | None, str | None], None],
    argv: list[str] | None,
    prog: str,
    expected: tuple[type[BaseException], ...],
) -> int:
    """Run a tool; an expected error (bad run folder, config, state file) is one line on
    stderr and exit code 2 instead of a traceback."""
    try:
        run(argv, prog)
    except expected as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0
