"""The offline report of `python report.py`: tables in, numbers, PNG charts and one HTML page out."""
