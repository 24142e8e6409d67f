"""Benchmarks: ``python -m bench <name> [options]``; each prints one JSON object as its last line."""
