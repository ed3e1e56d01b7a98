"""The terminal UI (textual): a live event roll for `hark mic` and `hark replay --realtime`.

Threads: a textual thread worker owns the audio (it drains the source and feeds the engine, see
session.py); the UI thread only reads lock-protected snapshots (state.py) on its own 20 Hz clock
and sends commands (reset, thresholds) that the session applies under the same lock.
Entry point: `live.ui.app.run_ui`.
"""
