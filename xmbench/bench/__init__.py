"""Bench stage: running suites, records, environment capture."""
