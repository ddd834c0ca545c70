"""Benchmarks: ``python -m benchmarks.NAME [--quick]``; the last line printed is one JSON object."""
