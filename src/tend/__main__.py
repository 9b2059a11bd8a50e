"""``python -m tend`` runs the CLI."""

from tend.cli.main import run

run()
