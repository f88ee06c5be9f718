"""The TSV files the daemon writes: decision and answer logs, and the results."""
