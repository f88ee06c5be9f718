"""The daemon's live status: a snapshot of its state, served as a page, JSON and Prometheus metrics."""
