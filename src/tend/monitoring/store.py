"""Writing samples and host status in batches, and reading host status back.

A collection round becomes one transaction: one multi-row ``INSERT`` of every sample and one
multi-row upsert of every host's status, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from tend.db import Database
from tend.monitoring.models import HostStatus, MetricSample
from tend.monitoring.registry import Labels, Snapshot

HostStateName = Literal["up", "unreachable"]

_SAFE = "/:@!$&'()*+;-._~ "  # kept readable; only ``%``, ``,`` and ``=`` are escaped


def encode_labels(labels: Labels) -> str:
    """Return the canonical text of sorted label pairs: ``key=value,key=value``.

    ``%``, ``,`` and ``=`` inside keys and values are percent-escaped, so every label set has
    exactly one text and the text decodes back to it.
    """
    return ",".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in labels)


def decode_labels(text: str) -> Labels:
    """Invert :func:`encode_labels`."""
    if not text:
        return ()
    pairs = (part.split("=", 1) for part in text.split(","))
    return tuple((unquote(k), unquote(v)) for k, v in pairs)


@dataclass(frozen=True, slots=True)
class HostState:
    """Whether the monitor reaches a host: ``state`` holds ``since`` that time."""

    host: str
    state: HostStateName
    since: datetime
    last_attempt: datetime
    last_success: datetime | None
    last_error: str | None
    consecutive_failures: int


def sample_rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Turn a snapshot's samples into rows, one per series, skipping non-finite values."""
    rows: dict[tuple[str, Labels], dict[str, Any]] = {}
    for sample in snapshot.samples:
        if not math.isfinite(sample.value):
            continue
        rows[(sample.metric, sample.labels)] = {
            "host": snapshot.host,
            "metric": sample.metric,
            "ts": snapshot.at,
            "labels": encode_labels(sample.labels),
            "value": sample.value,
        }
    return list(rows.values())


def _state_of(row: HostStatus) -> HostState:
    state: HostStateName = "up" if row.state == "up" else "unreachable"
    return HostState(
        host=row.host,
        state=state,
        since=row.since,
        last_attempt=row.last_attempt,
        last_success=row.last_success,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
    )


class MetricStore:
    """Batch writes of samples and host status; reads of host status."""

    def __init__(self, database: Database) -> None:
        """Bind the store to the database."""
        self.database = database
        dialect = database.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def write_round(self, snapshots: Sequence[Snapshot], states: Sequence[HostState]) -> int:
        """Store one round: every sample in one statement, every host status in another.

        A sample already stored (same series and time) is kept, so a retried round is harmless.

        Args:
            snapshots: The round's snapshots (failed collections carry no samples).
            states: The status of every host the round tried.

        Returns:
            The number of sample rows sent.
        """
        rows = [row for snapshot in snapshots for row in sample_rows(snapshot)]
        if not rows and not states:
            return 0
        async with self.database.session() as session:
            if rows:
                insert_samples = self._insert(MetricSample).on_conflict_do_nothing()
                await session.execute(insert_samples, rows)
            if states:
                upsert = self._insert(HostStatus)
                columns = (
                    "state",
                    "since",
                    "last_attempt",
                    "last_success",
                    "last_error",
                    "consecutive_failures",
                )
                upsert = upsert.on_conflict_do_update(
                    index_elements=[HostStatus.host],
                    set_={name: upsert.excluded[name] for name in columns},
                )
                await session.execute(upsert, [_status_row(state) for state in states])
        return len(rows)

    async def states(self, hosts: Collection[str] | None = None) -> dict[str, HostState]:
        """Return the stored status of every host (or of ``hosts``), by host name."""
        query = select(HostStatus)
        if hosts is not None:
            query = query.where(HostStatus.host.in_(list(hosts)))
        async with self.database.session() as session:
            found = (await session.execute(query)).scalars()
            return {row.host: _state_of(row) for row in found}

    async def state(self, host: str) -> HostState | None:
        """Return one host's stored status, if the monitor ever tried it."""
        async with self.database.session() as session:
            row = await session.get(HostStatus, host)
            return None if row is None else _state_of(row)

    async def forget(self, hosts: Collection[str]) -> None:
        """Drop the status of hosts that left the inventory (their samples age out)."""
        if not hosts:
            return
        async with self.database.session() as session:
            await session.execute(delete(HostStatus).where(HostStatus.host.in_(list(hosts))))


def _status_row(state: HostState) -> dict[str, Any]:
    return {
        "host": state.host,
        "state": state.state,
        "since": state.since,
        "last_attempt": state.last_attempt,
        "last_success": state.last_success,
        "last_error": state.last_error,
        "consecutive_failures": state.consecutive_failures,
    }
