"""Kept for older imports: the process helpers live in tools/harness.py (tools and tests share them)."""

from tools.harness import REPO, TOKEN, admin, emulator, fast_config, keyring_env, pedestrian_finished, start_pipeline, stop, store_token

__all__ = ["REPO", "TOKEN", "admin", "emulator", "fast_config", "keyring_env", "pedestrian_finished", "start_pipeline",
           "stop", "store_token"]
