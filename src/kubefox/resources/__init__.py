"""kubefox.resources."""
