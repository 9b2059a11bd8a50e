"""Fixtures for the assistant tests: the scripted mock provider (see ``mock_provider.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tend.settings import Settings
from tests.assistant.mock_provider import mock_provider
from tests.assistant.rig import AssistantRig
from tests.conftest import Harness, start_harness

__all__ = ["mock_provider"]


@pytest.fixture
async def rig(sqlite_settings: Settings, tmp_path: Path) -> AsyncIterator[AssistantRig]:
    """The assistant (agent core) against a started tend on SQLite (not about the backend)."""
    async with start_harness(sqlite_settings) as harness:
        yield AssistantRig(harness, tmp_path)


@pytest.fixture
async def rig_any(harness: Harness, tmp_path: Path) -> AssistantRig:
    """The assistant (agent core) against a started tend on the backend under test."""
    return AssistantRig(harness, tmp_path)
