"""Failed-login throttling per username and per client address."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from tend.errors import RateLimited

_MAX_KEYS = 100_000


class _Window:
    """Failure timestamps per key within a sliding window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float] | None:
        entries = self.failures.get(key)
        if entries is None:
            return None
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        if not entries:
            del self.failures[key]
            return None
        return entries

    def retry_after(self, key: str, now: float) -> float | None:
        entries = self._prune(key, now)
        if entries is None or len(entries) < self.limit:
            return None
        return entries[-self.limit] + self.window - now

    def add(self, key: str, now: float) -> None:
        if len(self.failures) >= _MAX_KEYS and key not in self.failures:
            for stale in list(self.failures)[: _MAX_KEYS // 10]:
                self._prune(stale, now)
            if len(self.failures) >= _MAX_KEYS:
                self.failures.pop(next(iter(self.failures)))
        self.failures.setdefault(key, deque(maxlen=self.limit)).append(now)

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


class LoginThrottle:
    """Refuse logins after too many recent failures for a username or from a client address.

    State lives in this process; with several API replicas each keeps its own count, so the
    effective limit is per replica.
    """

    def __init__(
        self,
        *,
        per_user: int,
        per_client: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the limits.

        Args:
            per_user: Failures allowed per username within the window.
            per_client: Failures allowed per client address within the window.
            window: The sliding window, seconds.
            clock: Monotonic clock (tests pass a fake one).
        """
        self._users = _Window(per_user, window)
        self._clients = _Window(per_client, window)
        self._clock = clock

    def check(self, username: str, client: str) -> None:
        """Raise when either the username or the client is locked out.

        Args:
            username: The username tried.
            client: The client address.

        Raises:
            RateLimited: With ``Retry-After`` in seconds.
        """
        now = self._clock()
        waits = [
            wait
            for wait in (
                self._users.retry_after(username.lower(), now),
                self._clients.retry_after(client, now),
            )
            if wait is not None
        ]
        if waits:
            raise RateLimited(
                "too many failed logins; try again later", retry_after=math.ceil(max(waits))
            )

    def record_failure(self, username: str, client: str) -> None:
        """Count a failed login.

        Args:
            username: The username tried.
            client: The client address.
        """
        now = self._clock()
        self._users.add(username.lower(), now)
        self._clients.add(client, now)

    def record_success(self, username: str) -> None:
        """Forget a username's failures after it logs in.

        Args:
            username: The username.
        """
        self._users.clear(username.lower())
