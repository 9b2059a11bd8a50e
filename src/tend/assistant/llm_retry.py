"""An HTTP transport that retries model requests on 429, 5xx and lost connections.

The provider SDKs are built with their own retries off, so this transport is the one place that
decides: exponential backoff with jitter, ``Retry-After`` honoured (seconds or an HTTP date, and
OpenAI's ``retry-after-ms``), every wait capped. A wait the provider asks for beyond the cap ends
the retries at once, so the caller gets a clear error instead of a request that hangs for an hour.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anyio
import httpx2

logger = logging.getLogger("tend.assistant.llm")

ATTEMPTS_HEADER = "tend-attempts"
"""Added to the response the transport gives up on: how many attempts were made."""

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})

# Failures before any response arrived. A read timeout is not among them: a provider that hangs
# would make every retry wait the whole timeout again.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.ReadError,
    httpx2.WriteError,
    httpx2.RemoteProtocolError,
)

Sleep = Callable[[float], Awaitable[None]]


def retry_after_seconds(headers: httpx2.Headers, now: datetime | None = None) -> float | None:
    """Read how long the provider asked to wait from the response headers.

    Args:
        headers: The response headers.
        now: The current time, for an HTTP-date ``Retry-After`` (default: now).

    Returns:
        Seconds to wait, or ``None`` when the response does not say.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryingTransport(httpx2.AsyncBaseTransport):
    """Send a request, retrying 429/5xx answers and lost connections with capped backoff.

    The wrapped connection pool belongs to one event loop; when the transport is used from a new
    loop after the old one stopped (a CLI that runs ``asyncio.run`` twice), it opens a new pool.
    """

    def __init__(
        self,
        *,
        max_retries: int,
        backoff: float,
        max_delay: float,
        limits: httpx2.Limits | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        """Create the transport.

        Args:
            max_retries: Retries after the first attempt (``0``: one attempt).
            backoff: Seconds before the first retry; doubles with each one.
            max_delay: The longest wait between attempts; a longer ``Retry-After`` ends retrying.
            limits: Connection pool limits of the wrapped transport.
            sleep: How to wait (tests may pass their own).
        """
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_delay = max_delay
        self._limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
        self._sleep = sleep
        self._inner: httpx2.AsyncHTTPTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _transport(self) -> httpx2.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        if self._inner is None or (
            self._loop is not loop and self._loop is not None and not self._loop.is_running()
        ):
            # The old pool's connections belong to a loop that is gone; they cannot be closed.
            self._inner = httpx2.AsyncHTTPTransport(limits=self._limits)
        self._loop = loop
        return self._inner

    def backoff_delay(self, attempt: int) -> float:
        """Return the wait after failed attempt number ``attempt`` (1-based), with jitter.

        Args:
            attempt: The attempt that just failed.

        Returns:
            Seconds to wait: ``backoff * 2**(attempt-1)``, capped, times a factor in [0.5, 1].
        """
        base = min(self.max_delay, self.backoff * 2.0 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    def _delay_for(self, response: httpx2.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response``, or ``None`` to hand it to the caller."""
        should_retry = response.headers.get("x-should-retry", "").lower()
        if attempt > self.max_retries or should_retry == "false":
            return None
        if response.status_code not in RETRY_STATUSES and should_retry != "true":
            return None
        asked = retry_after_seconds(response.headers)
        if asked is None:
            return self.backoff_delay(attempt)
        if asked > self.max_delay:
            return None
        return asked

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request``, retrying as configured.

        Args:
            request: The request; its body is read once so it can be sent again.

        Returns:
            The first answer that is not retried, marked with how many attempts it took.
        """
        await request.aread()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._transport().handle_async_request(request)
            except RETRY_ERRORS as exc:
                if attempt > self.max_retries:
                    raise
                pause = self.backoff_delay(attempt)
                logger.warning(
                    "model request to %s failed (%s), retry %d/%d in %.2fs",
                    request.url.host,
                    type(exc).__name__,
                    attempt,
                    self.max_retries,
                    pause,
                )
                await self._sleep(pause)
                continue
            delay = self._delay_for(response, attempt)
            if delay is None:
                response.headers[ATTEMPTS_HEADER] = str(attempt)
                return response
            await response.aread()
            await response.aclose()
            logger.warning(
                "model request to %s answered HTTP %d, retry %d/%d in %.2fs",
                request.url.host,
                response.status_code,
                attempt,
                self.max_retries,
                delay,
            )
            await self._sleep(delay)

    async def aclose(self) -> None:
        """Close the wrapped connection pool."""
        if self._inner is not None:
            await self._inner.aclose()
            self._inner = None
