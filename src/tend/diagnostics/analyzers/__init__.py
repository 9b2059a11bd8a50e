"""The analyzers, one module each."""
