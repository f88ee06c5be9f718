"""Aggregation of overlapping crowd answers with crowd-kit, shared by every pipeline.

No pipeline knowledge here: votes in, labels with probabilities (or scores) out.
"""
