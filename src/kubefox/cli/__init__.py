"""The ``fox`` command line."""
