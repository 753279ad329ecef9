"""Benchmarks run by ``make bench`` (``python -m bench``); each scenario reports JSON."""
