"""kubefox.router."""
