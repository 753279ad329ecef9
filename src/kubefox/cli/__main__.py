"""``python -m kubefox.cli``: what ``fox up`` runs in the background."""

from kubefox.cli.main import main

main()
