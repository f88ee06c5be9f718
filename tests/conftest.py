"""Settings for every test, in this process and in the daemons the tests start."""

from __future__ import annotations

import os

from engine.checkpoint import VERIFY_ENV

# Every checkpoint pickles the unmarked entries again and fails on a difference, so a handler that
# changes a work without marking it fails the test that exercises it (production only logs it).
os.environ.setdefault(VERIFY_ENV, "1")
