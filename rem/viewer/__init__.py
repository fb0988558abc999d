"""Watching runs: `rem play` (pygame viewer) and `rem video` (MP4/PNG export).

A run folder is opened by `rem.training.restore` (the loader every reader of runs shares).
Layout, top to bottom: `dream` (the world model as a game, re-anchored on real frames) ->
`views` (frame sources per mode: logic, no pygame) -> `render` (frames to NumPy canvases) ->
`app` (the pygame loop) / `video` (export); `keymap`, `recording` and `episodes` are the
small pieces they share.
"""
