"""The hosts inventory."""
