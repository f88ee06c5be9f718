"""Runnable tools: the crash-restart soak and the fault run (docs/resilience.md)."""
