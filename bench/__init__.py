"""`hark bench`: latency, real-time factor and stream capacity of the live engine, with baselines.

Modules, one concept each: cli (flags, light), run (the command: sections in order), timing
(distributions), audio (what is replayed), stages (the live engine path, hop by hop), baselines
(the naive loops; Keras in a child process), capacity (how many streams stay real time, one
Engine each and in one hark.live.batched.BatchedEngine), loopback + player (end to end through a
private PulseAudio), startup + first_block (`hark mic` to its first processed block, peak
RSS), report (table, Markdown, JSON, plot, targets).
Nothing heavy is imported at package import time.
"""
