"""Fixtures for execution tests: real sshd servers on loopback (see ``sshd.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.execution.sshd import SSHD, SshdFactory


@pytest.fixture(scope="session")
def sshd_available() -> None:
    """Skip SSH tests when OpenSSH's sshd is not installed (fail instead in CI)."""
    if not SSHD.is_file() or not os.access(SSHD, os.X_OK):
        reason = f"{SSHD} is not installed (apt-get install openssh-server) — SSH tests need it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def sshd_factory(sshd_available: None, tmp_path: Path) -> Iterator[SshdFactory]:
    """Start real sshd servers for one test: ``sshd_factory.start(n)`` / ``.one()``."""
    factory = SshdFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()
