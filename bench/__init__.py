"""Benchmarks: `foryou bench NAME` or `python -m bench.NAME`; each prints a table."""
