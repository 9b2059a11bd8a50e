"""Run one coroutine per host with bounded concurrency, yielding results as each host finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def fan_out(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
) -> AsyncIterator[R]:
    """Yield ``work(item)`` results in completion order, at most ``concurrency`` at a time.

    ``work`` must not raise (it turns its own failures into results) and must bound its own
    time; a slow item then delays nobody but itself. Leaving the iteration early cancels the
    items still running.

    Args:
        items: The inputs (hosts).
        work: The per-item coroutine function.
        concurrency: Most items in flight at once.

    Yields:
        Each result as soon as its item finishes.
    """
    limit = asyncio.Semaphore(concurrency)
    results: asyncio.Queue[R | Exception] = asyncio.Queue()

    async def one(item: T) -> None:
        async with limit:
            try:
                results.put_nowait(await work(item))
            except Exception as exc:  # a bug in work: surface it instead of waiting forever
                results.put_nowait(exc)

    tasks = [asyncio.create_task(one(item)) for item in items]
    try:
        for _ in tasks:
            outcome = await results.get()
            if isinstance(outcome, Exception):
                raise outcome
            yield outcome
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
