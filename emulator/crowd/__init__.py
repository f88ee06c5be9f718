"""The emulator's simulated crowd: scenarios, marked photos, worker behaviour, the simulator,
ground-truth scoring and the toloka.ini writer (see docs/emulator.md, "The simulated crowd")."""
