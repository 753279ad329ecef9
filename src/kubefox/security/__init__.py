"""kubefox.security."""
