"""tend: AI-assisted management for fleets of ordinary Linux servers."""

__version__ = "0.1.0"
