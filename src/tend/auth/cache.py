"""Resolved API tokens, remembered for a few seconds so hot read paths skip the token lookup.

Only successful resolutions are kept, keyed by the token's hash (never the secret). A token
revoked, or a user disabled, deleted or given another role through this process clears the
cache at once; on other API replicas (or after ``tend users`` on the command line) the change
takes effect within ``TEND_AUTH_CACHE_SECONDS``. Set it to 0 to look every token up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import inspect

from tend.auth.models import User
from tend.db import utcnow

if TYPE_CHECKING:
    from tend.auth.service import Principal


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    until: float  # monotonic
    token_expires_at: datetime | None


class ApiTokenCache:
    """A small TTL + LRU map from API-token hash to the principal it resolved to."""

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        """Configure the cache.

        Args:
            ttl: Seconds a resolution is reused (0 disables the cache).
            max_entries: Most tokens remembered; the least recently used go first.
        """
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, token_hash: str) -> Principal | None:
        """Return the remembered principal, unless it is stale or its token has expired."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        expired = entry.token_expires_at is not None and entry.token_expires_at <= utcnow()
        if entry.until <= time.monotonic() or expired:
            del self._entries[token_hash]
            return None
        self._entries.move_to_end(token_hash)
        return entry.principal

    def put(self, token_hash: str, principal: Principal, token_expires_at: datetime | None) -> None:
        """Remember a successful resolution."""
        if self.ttl <= 0:
            return
        # A detached copy: the request's own instance expires when its session ends.
        kept = replace(principal, user=_detached_copy(principal.user))
        self._entries[token_hash] = _Entry(kept, time.monotonic() + self.ttl, token_expires_at)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (a token, a user or a role changed)."""
        self._entries.clear()


def _detached_copy(user: User) -> User:
    """A transient ``User`` with the same column values, safe to share between requests."""
    columns = inspect(User).column_attrs
    return User(**{attr.key: getattr(user, attr.key) for attr in columns})
