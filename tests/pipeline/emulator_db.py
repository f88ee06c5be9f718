"""Kept for older imports: reading the emulator's SQLite file lives in tools/harness.py."""

from tools.harness import objects, truth

__all__ = ["objects", "truth"]
