"""Collectors: the local host through psutil, SSH hosts through one read-only probe."""
