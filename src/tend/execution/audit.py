"""The tamper-evident audit log: append-only records in an HMAC chain with a sealed head.

Each record's ``hash`` is HMAC-SHA256 over the previous record's hash and the record's own
canonical content (its id included), keyed by a key derived from the server's secret key. Editing
a record breaks its hash; removing or reordering records breaks the next record's ``prev_hash``;
cutting records off the end disagrees with the sealed head. Without the secret key nobody with
mere database access can forge a consistent chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import Database, utcnow
from tend.execution.models import AuditHead, AuditRecord

GENESIS = "0" * 64
_HEAD_ID = 1
_PG_AUDIT_LOCK = 0x61756474  # "audt"
_VERIFY_BATCH = 2000


@dataclass(slots=True)
class AuditEntry:
    """What to record; the log adds id, time and the chain hashes."""

    event: str
    actor: str
    actor_role: str | None = None
    host: str | None = None
    argv: Sequence[str] | None = None
    risk: str | None = None
    detail: str | None = None
    approval_id: str | None = None
    run_id: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    duration: float | None = None
    stdout_bytes: int | None = None
    stderr_bytes: int | None = None
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking the whole chain."""

    ok: bool
    records: int
    first_bad_id: int | None = None
    reason: str | None = None


_CHAINED_FIELDS = (
    "id",
    "created_at",
    "event",
    "actor",
    "actor_role",
    "host",
    "argv",
    "risk",
    "detail",
    "approval_id",
    "run_id",
    "exit_code",
    "signal",
    "duration",
    "stdout_bytes",
    "stderr_bytes",
    "stdout_sha256",
    "stderr_sha256",
)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    fields = asdict(entry)
    extra = fields.pop("extra")
    if extra:
        note = json.dumps(extra, sort_keys=True, default=str)
        fields["detail"] = f"{fields['detail']} {note}" if fields["detail"] else note
    if fields["argv"] is not None:
        fields["argv"] = list(fields["argv"])
    return fields


def _canonical(record: AuditRecord) -> bytes:
    values: dict[str, Any] = {}
    for name in _CHAINED_FIELDS:
        value = getattr(record, name)
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        elif isinstance(value, tuple):
            value = list(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class AuditLog:
    """Appends to, verifies and queries the audit chain."""

    def __init__(self, database: Database, secret_key: str) -> None:
        """Bind the log to a database and derive its MAC key.

        Args:
            database: The database.
            secret_key: The server's secret key (the MAC key is derived from it).
        """
        self._database = database
        self._key = hmac.new(secret_key.encode(), b"tend audit chain v1", hashlib.sha256).digest()
        self._pending: list[tuple[list[AuditEntry], asyncio.Future[list[int]]]] = []
        self._writer: asyncio.Task[None] | None = None

    def _record_hash(self, prev_hash: str, record: AuditRecord) -> str:
        message = prev_hash.encode() + b"\n" + _canonical(record)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _head_mac(self, last_id: int, last_hash: str, count: int) -> str:
        message = f"head:{last_id}:{last_hash}:{count}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def append(self, entry: AuditEntry) -> int:
        """Record one entry durably before the caller goes on.

        Args:
            entry: What happened.

        Returns:
            The record's id.
        """
        return (await self.append_many([entry]))[0]

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Record entries durably, in order, before returning.

        Concurrent callers are grouped into one transaction (group commit): a fan-out over many
        hosts costs a few commits, not two per host.

        Args:
            entries: What happened.

        Returns:
            The records' ids, in order.
        """
        if not entries:
            return []
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(entries), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                ids = await self._write([entry for entries, _ in batch for entry in entries])
            except Exception as exc:  # every waiter learns the write failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for entries, future in batch:
                if not future.done():
                    future.set_result(ids[start : start + len(entries)])
                start += len(entries)

    async def _write(self, entries: Sequence[AuditEntry]) -> list[int]:
        # One writer per process (the drain task); across PostgreSQL replicas an advisory lock
        # held until commit keeps the chain linear.
        async with self._database.session() as session:
            if self._database.engine.dialect.name == "postgresql":
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK}
                )
            head = await session.get(AuditHead, _HEAD_ID)
            prev_hash = head.last_hash if head else GENESIS
            count = head.count if head else 0
            ids: list[int] = []
            for entry in entries:
                record = AuditRecord(
                    **_fields(entry), created_at=utcnow(), prev_hash=prev_hash, hash=""
                )
                session.add(record)
                await session.flush()
                record.hash = self._record_hash(prev_hash, record)
                prev_hash = record.hash
                count += 1
                ids.append(record.id)
            mac = self._head_mac(ids[-1], prev_hash, count)
            if head is None:
                session.add(
                    AuditHead(
                        id=_HEAD_ID, last_id=ids[-1], last_hash=prev_hash, count=count, mac=mac
                    )
                )
            else:
                head.last_id, head.last_hash, head.count, head.mac = ids[-1], prev_hash, count, mac
            return ids

    async def verify(self) -> VerifyResult:
        """Walk the whole chain in id order and report the first record that does not fit.

        Returns:
            ``ok`` with the number of records, or the first bad record and why.
        """
        async with self._database.session() as session:
            expected_prev = GENESIS
            count = 0
            last_id: int | None = None
            after = 0
            while True:
                batch = list(
                    (
                        await session.execute(
                            select(AuditRecord)
                            .where(AuditRecord.id > after)
                            .order_by(AuditRecord.id)
                            .limit(_VERIFY_BATCH)
                        )
                    ).scalars()
                )
                if not batch:
                    break
                for record in batch:
                    if record.prev_hash != expected_prev:
                        return VerifyResult(
                            ok=False,
                            records=count,
                            first_bad_id=record.id,
                            reason=(
                                f"record {record.id} does not follow "
                                f"{'the start' if last_id is None else f'record {last_id}'}: "
                                "a record was removed or reordered before it"
                            ),
                        )
                    if not hmac.compare_digest(
                        record.hash, self._record_hash(record.prev_hash, record)
                    ):
                        return VerifyResult(
                            ok=False,
                            records=count,
                            first_bad_id=record.id,
                            reason=f"record {record.id} was modified after it was written",
                        )
                    expected_prev = record.hash
                    last_id = record.id
                    count += 1
                session.expunge_all()
                after = batch[-1].id
            return await self._verify_head(session, count, last_id, expected_prev)

    async def _verify_head(
        self, session: AsyncSession, count: int, last_id: int | None, last_hash: str
    ) -> VerifyResult:
        head = await session.get(AuditHead, _HEAD_ID)
        if head is None:
            if count == 0:
                return VerifyResult(ok=True, records=0)
            return VerifyResult(
                ok=False, records=count, first_bad_id=last_id, reason="the chain head is missing"
            )
        if not hmac.compare_digest(
            head.mac, self._head_mac(head.last_id, head.last_hash, head.count)
        ):
            return VerifyResult(
                ok=False,
                records=count,
                first_bad_id=head.last_id,
                reason="the chain head was modified",
            )
        if head.count != count or head.last_id != last_id or head.last_hash != last_hash:
            return VerifyResult(
                ok=False,
                records=count,
                first_bad_id=(last_id or 0) + 1 if head.count > count else last_id,
                reason=(
                    f"the chain ends at record {last_id} after {count} records, but the sealed "
                    f"head says record {head.last_id} after {head.count}: records were removed"
                ),
            )
        return VerifyResult(ok=True, records=count)

    async def query(
        self,
        *,
        host: str | None = None,
        actor: str | None = None,
        risk: str | None = None,
        event: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Return records newest first, filtered.

        Args:
            host: Only this host.
            actor: Only this user.
            risk: Only this risk.
            event: Only this event.
            since: Not before this time.
            until: Not after this time.
            before_id: Only records older than this id (paging).
            limit: At most this many.

        Returns:
            The records.
        """
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
        conditions = {
            AuditRecord.host: host,
            AuditRecord.actor: actor,
            AuditRecord.risk: risk,
            AuditRecord.event: event,
        }
        for column, value in conditions.items():
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditRecord.created_at >= since)
        if until is not None:
            query = query.where(AuditRecord.created_at <= until)
        if before_id is not None:
            query = query.where(AuditRecord.id < before_id)
        async with self._database.session() as session:
            return list((await session.execute(query)).scalars())
