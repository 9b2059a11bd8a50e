"""Tamper evidence: edit, delete, reorder or truncate audit rows in the database -> verify fails."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from tend.auth.models import Role
from tend.cli.main import app as cli_app
from tend.execution.audit import AuditEntry
from tend.execution.models import AuditRecord
from tests.conftest import Harness


async def seed(h: Harness, n: int = 5) -> list[int]:
    log = h.context.execution.audit
    return await log.append_many(
        [
            AuditEntry(
                event="run_intent",
                actor="alice",
                host="local",
                argv=["uptime", str(i)],
                risk="read",
            )
            for i in range(n)
        ]
    )


async def verify(h: Harness) -> dict:
    admin = await h.role_headers(Role.ADMIN)
    response = await h.client.get("/api/v1/audit/verify", headers=admin)
    assert response.status_code == 200
    return response.json()


async def test_intact_chain_verifies(harness: Harness) -> None:
    assert (await verify(harness))["ok"] is True
    ids = await seed(harness)
    result = await verify(harness)
    assert result == {"ok": True, "records": len(ids), "first_bad_id": None, "reason": None}


async def test_concurrent_appends_keep_one_chain(harness: Harness) -> None:
    log = harness.context.execution.audit
    entries = [AuditEntry(event="e", actor=f"u{i}") for i in range(40)]
    ids = await asyncio.gather(*(log.append(e) for e in entries))
    assert len(set(ids)) == 40
    assert (await verify(harness))["ok"] is True


async def test_edited_record_is_detected(harness: Harness) -> None:
    ids = await seed(harness)
    async with harness.context.database.session() as session:
        await session.execute(
            update(AuditRecord).where(AuditRecord.id == ids[2]).values(argv=["rm", "-rf", "/"])
        )
    result = await verify(harness)
    assert result["ok"] is False
    assert result["first_bad_id"] == ids[2]
    assert "modified" in result["reason"]


async def test_rehashed_edit_is_detected(harness: Harness) -> None:
    """An attacker who also rewrites the hash without the key breaks the next link."""
    ids = await seed(harness)
    async with harness.context.database.session() as session:
        await session.execute(
            update(AuditRecord)
            .where(AuditRecord.id == ids[1])
            .values(actor="mallory", hash="f" * 64)
        )
    result = await verify(harness)
    assert result["ok"] is False
    assert result["first_bad_id"] == ids[1]


async def test_deleted_record_is_detected(harness: Harness) -> None:
    ids = await seed(harness)
    async with harness.context.database.session() as session:
        await session.execute(delete(AuditRecord).where(AuditRecord.id == ids[2]))
    result = await verify(harness)
    assert result["ok"] is False
    assert result["first_bad_id"] == ids[3]
    assert "removed or reordered" in result["reason"]


async def test_reordered_records_are_detected(harness: Harness) -> None:
    ids = await seed(harness)
    async with harness.context.database.session() as session:
        rows = {r.id: r for r in (await session.execute(select(AuditRecord))).scalars()}
        a, b = rows[ids[1]], rows[ids[3]]
        swap = ("argv", "prev_hash", "hash", "created_at")
        values_a = {k: getattr(a, k) for k in swap}
        values_b = {k: getattr(b, k) for k in swap}
        await session.execute(update(AuditRecord).where(AuditRecord.id == a.id).values(**values_b))
        await session.execute(update(AuditRecord).where(AuditRecord.id == b.id).values(**values_a))
    result = await verify(harness)
    assert result["ok"] is False
    assert result["first_bad_id"] == ids[1]


async def test_truncated_tail_is_detected(harness: Harness) -> None:
    ids = await seed(harness)
    async with harness.context.database.session() as session:
        await session.execute(delete(AuditRecord).where(AuditRecord.id == ids[-1]))
    result = await verify(harness)
    assert result["ok"] is False
    assert "removed" in result["reason"]


async def test_cli_verify_exit_codes(harness: Harness, monkeypatch) -> None:
    ids = await seed(harness, 3)
    settings = harness.context.settings
    monkeypatch.setenv("TEND_DATA_DIR", str(settings.data_dir))
    if settings.database_url is not None:
        monkeypatch.setenv("TEND_DATABASE_URL", settings.database_url.get_secret_value())
    if settings.database_schema:
        monkeypatch.setenv("TEND_DATABASE_SCHEMA", settings.database_schema)
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, cli_app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["records"] == 3
    async with harness.context.database.session() as session:
        await session.execute(
            update(AuditRecord).where(AuditRecord.id == ids[0]).values(detail="edited")
        )
    bad = await asyncio.to_thread(runner.invoke, cli_app, ["audit", "verify"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["first_bad_id"] == ids[0]
