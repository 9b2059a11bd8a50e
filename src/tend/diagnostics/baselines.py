"""Load and store what baseline analyzers remember about a host between checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tend.db import Database, utcnow
from tend.diagnostics.models import DiagnosticsBaseline
from tend.hosts.models import Host


async def load_baselines(database: Database, host: str, analyzers: Iterable[str]) -> dict[str, Any]:
    """Return ``{analyzer: data}`` remembered for a host (analyzers with none are absent)."""
    wanted = list(analyzers)
    if not wanted:
        return {}
    async with database.session() as session:
        rows = await session.execute(
            select(DiagnosticsBaseline.analyzer, DiagnosticsBaseline.data)
            .join(Host, Host.id == DiagnosticsBaseline.host_id)
            .where(Host.name == host, DiagnosticsBaseline.analyzer.in_(wanted))
        )
        return {str(analyzer): data for analyzer, data in rows}


async def save_baselines(database: Database, host: str, baselines: Mapping[str, Any]) -> None:
    """Replace the remembered data of each analyzer in ``baselines`` for a host.

    A host deleted meanwhile is simply skipped; two checks racing on the same host end with
    one of their baselines, which is all "since the last check" needs.
    """
    if not baselines:
        return
    for attempt in range(2):
        try:
            async with database.session() as session:
                host_id = (
                    await session.execute(select(Host.id).where(Host.name == host))
                ).scalar_one_or_none()
                if host_id is None:
                    return
                for analyzer, data in baselines.items():
                    row = await session.get(DiagnosticsBaseline, (host_id, analyzer))
                    if row is None:
                        session.add(
                            DiagnosticsBaseline(
                                host_id=host_id, analyzer=analyzer, data=data, updated_at=utcnow()
                            )
                        )
                    else:
                        row.data = data
                        row.updated_at = utcnow()
            return
        except IntegrityError:
            if attempt:
                raise
