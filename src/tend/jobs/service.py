"""The one job interface: enqueue, get, list, cancel, and follow a job's events.

The database is the source of truth for jobs and their events; the bus only wakes followers
early, so a job run by any process (embedded runner or Celery worker) streams through any API
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tend.db import Database, utcnow
from tend.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from tend.jobs.bus import EventBus
from tend.jobs.kinds import KINDS
from tend.jobs.models import FINISHED_STATES, Job, JobEvent
from tend.jobs.schemas import JobEventPublic, JobPublic

_FOLLOW_POLL = 1.0


class _NotApplied(Exception):
    """A conditional job update matched nothing; the event is not recorded."""


class BrokerUnavailable(Exception):
    """The message broker could not take a job."""


class JobBackend(Protocol):
    """Where queued jobs get run: the embedded runner or Celery."""

    async def dispatch(self, job_id: str, queue: str) -> None:
        """Hand a committed job to whoever runs it.

        Raises:
            BrokerUnavailable: When the job could not be sent (it stays queued).
        """

    async def cancel_running(self, job_id: str) -> None:
        """Stop a running job wherever it runs."""


class JobService:
    """Stores jobs and their events, and hands new ones to the backend after commit."""

    def __init__(self, database: Database, bus: EventBus) -> None:
        """Bind the service.

        Args:
            database: The database (jobs and events live there).
            bus: Live event wake-ups.
        """
        self.database = database
        self.bus = bus
        self.backend: JobBackend | None = None
        self._event_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        requested_by: str,
        requester_id: int | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
        max_attempts: int = 3,
    ) -> JobPublic:
        """Queue a job; a repeated idempotency key returns the job it first created.

        The job is committed first and only then handed to the backend, so a job is never run
        from a transaction that did not commit.

        Args:
            kind: A registered job kind.
            params: JSON parameters for the handler.
            requested_by: The requesting username (or ``tend`` for periodic work).
            requester_id: The requesting user's id.
            idempotency_key: Makes enqueueing the same work twice a no-op.
            queue: Queue to route to (default: the kind's).
            max_attempts: Runs allowed for idempotent kinds after crashes.

        Returns:
            The job.

        Raises:
            ValidationFailed: For an unknown kind.
        """
        if kind not in KINDS:
            raise ValidationFailed(f"unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        if idempotency_key is not None:
            existing = await self._by_key(idempotency_key)
            if existing is not None:
                return existing
        job = Job(
            id=uuid.uuid4().hex,
            kind=kind,
            params=params,
            queue=queue or KINDS[kind].queue,
            state="queued",
            idempotency_key=idempotency_key,
            requested_by=requested_by,
            requester_id=requester_id,
            max_attempts=max_attempts,
            created_at=utcnow(),
        )
        try:
            async with self.database.session() as session:
                session.add(job)
                session.add(JobEvent(job_id=job.id, seq=1, type="state", data={"state": "queued"}))
        except IntegrityError:
            if idempotency_key is not None:
                existing = await self._by_key(idempotency_key)
                if existing is not None:
                    return existing
            raise
        if self.backend is not None:
            try:
                await self.backend.dispatch(job.id, job.queue)
            except BrokerUnavailable as exc:
                raise ServiceUnavailable(
                    f"the job broker is unreachable ({exc}); job {job.id} is saved as queued "
                    "and will be sent when the broker is back"
                ) from exc
        return JobPublic.model_validate(job)

    async def _by_key(self, key: str) -> JobPublic | None:
        async with self.database.session() as session:
            job = (
                await session.execute(select(Job).where(Job.idempotency_key == key))
            ).scalar_one_or_none()
            return JobPublic.model_validate(job) if job else None

    async def get(self, job_id: str) -> JobPublic:
        """Return a job.

        Raises:
            NotFound: When there is no such job.
        """
        async with self.database.session() as session:
            job = await session.get(Job, job_id)
            if job is None:
                raise NotFound(f"job {job_id} not found")
            return JobPublic.model_validate(job)

    async def list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        requested_by: str | None = None,
        limit: int = 100,
    ) -> list[JobPublic]:
        """List jobs newest first, filtered."""
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        for column, value in (
            (Job.state, state),
            (Job.kind, kind),
            (Job.requested_by, requested_by),
        ):
            if value is not None:
                query = query.where(column == value)
        async with self.database.session() as session:
            return [JobPublic.model_validate(j) for j in (await session.execute(query)).scalars()]

    async def record(
        self,
        job_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        job_values: dict[str, Any] | None = None,
        only_if_state: str | None = None,
        only_if_worker: str | None = None,
    ) -> int | None:
        """Append an event to a job's log, changing the job row in the same transaction.

        Args:
            job_id: The job.
            event_type: ``state``, ``progress``, ``host``, ...
            data: The event's JSON data.
            job_values: Columns of the job row to set with it.
            only_if_state: Apply nothing unless the job is in this state (claims).
            only_if_worker: Apply nothing unless this worker holds the job (settling the job
                of a dead worker must not touch it once another worker took it over).

        Returns:
            The event's sequence number, or ``None`` when a condition did not match.
        """
        values = dict(job_values or {})
        if event_type == "progress":
            values.update(progress=data["progress"], message=data.get("message"))
        # Appends of one job are serialised in this process (a fan-out reports many hosts at
        # once); the retry below only covers another process appending at the same moment.
        async with self._event_lock(job_id):
            seq = await self._append(
                job_id, event_type, data, values, only_if_state, only_if_worker=only_if_worker
            )
        if seq is not None:
            await self.bus.publish(job_id, {"seq": seq, "type": event_type})
        return seq

    @contextlib.asynccontextmanager
    async def _event_lock(self, job_id: str) -> AsyncIterator[None]:
        lock, users = self._event_locks.get(job_id, (asyncio.Lock(), 0))
        self._event_locks[job_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._event_locks[job_id]
            if users <= 1:
                del self._event_locks[job_id]
            else:
                self._event_locks[job_id] = (lock, users - 1)

    async def _append(
        self,
        job_id: str,
        event_type: str,
        data: dict[str, Any],
        values: dict[str, Any],
        only_if_state: str | None,
        *,
        only_if_worker: str | None = None,
    ) -> int | None:
        conditional = only_if_state is not None or only_if_worker is not None
        for attempt in range(20):
            try:
                async with self.database.session() as session:
                    if values:
                        query = update(Job).where(Job.id == job_id).values(**values)
                        if only_if_state is not None:
                            query = query.where(Job.state == only_if_state)
                        if only_if_worker is not None:
                            query = query.where(Job.worker == only_if_worker)
                        changed = await session.execute(query)
                        if conditional and changed.rowcount != 1:  # type: ignore[attr-defined]
                            raise _NotApplied  # noqa: TRY301 - rolls the transaction back
                    last = (
                        await session.execute(
                            select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)
                        )
                    ).scalar_one()
                    seq = (last or 0) + 1
                    session.add(JobEvent(job_id=job_id, seq=seq, type=event_type, data=data))
                return seq
            except _NotApplied:
                return None
            except IntegrityError:  # another process took this seq; take the next one
                await asyncio.sleep(0.005 * (attempt + 1))
        msg = f"could not append an event to job {job_id}"
        raise RuntimeError(msg)

    async def finish(
        self,
        job_id: str,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        only_if_worker: str | None = None,
    ) -> bool:
        """Move a job to a final state (or back to queued) and record it.

        Args:
            job_id: The job.
            state: The new state.
            result: The result to store.
            error: The error to store.
            only_if_worker: Only if the job is still ``running`` on this worker.

        Returns:
            Whether the job was changed (always, unless ``only_if_worker`` did not match).
        """
        values: dict[str, Any] = {"state": state, "error": error}
        if state in FINISHED_STATES:
            values["finished_at"] = utcnow()
            if state == "succeeded":
                values["progress"] = 1.0
        if result is not None:
            values["result"] = result
        if state == "queued":
            values.update(worker=None, started_at=None, heartbeat_at=None)
        seq = await self.record(
            job_id,
            "state",
            {"state": state, "error": error},
            job_values=values,
            only_if_state="running" if only_if_worker is not None else None,
            only_if_worker=only_if_worker,
        )
        return seq is not None

    async def cancel(self, job_id: str, *, by: str) -> JobPublic:
        """Cancel a queued job at once, or ask a running job to stop.

        Raises:
            NotFound: Unknown job.
            Conflict: The job already finished.
        """
        now = utcnow()
        async with self.database.session() as session:
            job = await session.get(Job, job_id)
            if job is None:
                raise NotFound(f"job {job_id} not found")
            if job.state in FINISHED_STATES:
                raise Conflict(f"job {job_id} already {job.state}")
            queued = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(
                    state="cancelled",
                    finished_at=now,
                    error=f"cancelled by {by}",
                    cancel_requested=True,
                )
            )
            if queued.rowcount != 1:  # type: ignore[attr-defined]
                job.cancel_requested = True
            was_queued = queued.rowcount == 1  # type: ignore[attr-defined]
        if was_queued:
            await self.record(
                job_id, "state", {"state": "cancelled", "error": f"cancelled by {by}"}
            )
        else:
            await self.record(job_id, "cancel_requested", {"by": by})
            if self.backend is not None:
                await self.backend.cancel_running(job_id)
        return await self.get(job_id)

    async def events(self, job_id: str, *, after: int = 0) -> AsyncIterator[JobEventPublic]:
        """Replay a job's events after ``after`` and follow new ones until it finishes.

        Raises:
            NotFound: Unknown job.
        """
        await self.get(job_id)
        async with self.bus.subscribe(job_id) as wake:
            while True:
                async with self.database.session() as session:
                    # The state first: a final state is committed with its event, so when the
                    # state read is final the rows read next hold every event; stop after them.
                    state = (
                        await session.execute(select(Job.state).where(Job.id == job_id))
                    ).scalar_one()
                    rows = list(
                        (
                            await session.execute(
                                select(JobEvent)
                                .where(JobEvent.job_id == job_id, JobEvent.seq > after)
                                .order_by(JobEvent.seq)
                            )
                        ).scalars()
                    )
                for row in rows:
                    after = row.seq
                    yield JobEventPublic.model_validate(row)
                if state in FINISHED_STATES:
                    return
                try:
                    async with asyncio.timeout(_FOLLOW_POLL):
                        await wake.get()
                except TimeoutError:
                    pass

    async def mark_running(self, job_id: str, worker: str, now: datetime) -> bool:
        """Claim a queued job for a worker (one claimant wins).

        Returns:
            Whether this worker got the job.
        """
        seq = await self.record(
            job_id,
            "state",
            {"state": "running", "worker": worker},
            job_values={
                "state": "running",
                "worker": worker,
                "started_at": now,
                "heartbeat_at": now,
                "attempts": Job.attempts + 1,
            },
            only_if_state="queued",
        )
        return seq is not None
