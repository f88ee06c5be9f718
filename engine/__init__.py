"""The daemon's engine: configuration, secrets, cursors, journal, checkpoints, the tick loop."""
