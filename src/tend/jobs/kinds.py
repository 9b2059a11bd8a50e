"""Job kinds: each describes itself once (name, idempotency, what it does) with its handler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tend.context import AppContext


@dataclass
class JobContext:
    """What a running job sees: its params, the app's services, and ways to report progress."""

    job_id: str
    params: dict[str, Any]
    app: AppContext
    report: Callable[[str, dict[str, Any]], Awaitable[None]]
    partial: dict[str, Any] = field(default_factory=dict)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress (0..1) with an optional message."""
        await self.report(
            "progress", {"progress": max(0.0, min(1.0, fraction)), "message": message}
        )

    async def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Publish an event (e.g. one host's result) to whoever watches the job."""
        await self.report(event_type, data)


Handler = Callable[[JobContext], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class JobKind:
    """A kind of job: ``idempotent`` kinds may be retried after a crash, others are failed."""

    name: str
    handler: Handler
    idempotent: bool
    description: str
    queue: str = "default"
    api: bool = False


KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str, *, idempotent: bool, description: str, queue: str = "default", api: bool = False
) -> Callable[[Handler], Handler]:
    """Register a handler as a job kind.

    Args:
        name: The kind's name (``run``, ``noop``, ...).
        idempotent: Whether running it twice is harmless (then it is retried after a crash).
        description: One sentence for the API docs.
        queue: Default queue.
        api: Whether admins may enqueue it directly through ``POST /jobs`` (kinds that act
            for a requester, like ``run``, are created only by their own endpoints).

    Returns:
        The decorator.
    """

    def register(handler: Handler) -> Handler:
        KINDS[name] = JobKind(name, handler, idempotent, description, queue, api)
        return handler

    return register


def get_kind(name: str) -> JobKind:
    """Return a registered kind.

    Raises:
        KeyError: When no such kind exists.
    """
    return KINDS[name]
