"""A local emulator of the Toloka REST API v1 with a simulated crowd.

The server half (store, search, routes, faults, admin API, app) lives here; the
simulated crowd lives in :mod:`emulator.crowd`. See ``docs/emulator.md``.
"""
