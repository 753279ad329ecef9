"""kubefox.telemetry."""
