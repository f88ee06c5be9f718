"""Route modules of the emulated Toloka API v1 (all mounted under ``/api/v1``).

``routes.add_api_routes`` registers them; this package file stays import-free so
``emulator.search`` can import ``api.errors`` without a cycle.
"""
