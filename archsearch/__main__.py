"""``python -m archsearch`` runs the CLI."""

from archsearch.cli import main

main()
