"""Telemetry: logging now; tracing and metrics arrive with the telemetry issue."""
