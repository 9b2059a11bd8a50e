"""Deterministic diagnostics: small analyzers that show their evidence."""
