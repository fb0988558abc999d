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

# `rem diagnose NAME` -> module of this package.
TOOLS = {
    "wm-fit": "wm_fit",
    "wm-map": "wm_map",
    "tokenizer-drift": "tokenizer_drift",
    "game-probe": "game_probe",
}
