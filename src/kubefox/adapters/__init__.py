"""Adapters: platform processes that bring the outside world in as events (HTTP first)."""
