"""kubefox.store."""
