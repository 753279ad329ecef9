"""kubefox.core."""
