"""Resilience: crashes, faults, hostile input, secrets (docs/resilience.md)."""
