"""Bounded capture of one output stream: keep a prefix, count and hash everything."""

from __future__ import annotations

import hashlib

from tend.execution.transports.base import StreamSummary


class BoundedCapture:
    """Keeps at most ``cap`` bytes of a stream while counting and hashing all of it.

    Memory stays flat however much is fed: only the first ``cap`` bytes are kept, the rest is
    counted and folded into an incremental SHA-256 and then dropped.
    """

    __slots__ = ("_buffer", "_cap", "_hash", "_total")

    def __init__(self, cap: int) -> None:
        """Create an empty capture.

        Args:
            cap: The most bytes to keep (0 keeps nothing but still counts and hashes).

        Raises:
            ValueError: If ``cap`` is negative.
        """
        if cap < 0:
            raise ValueError("output cap must not be negative")
        self._cap = cap
        self._buffer = bytearray()
        self._total = 0
        self._hash = hashlib.sha256()

    @property
    def total_bytes(self) -> int:
        """How many bytes were fed so far."""
        return self._total

    @property
    def truncated(self) -> bool:
        """Whether more was fed than is kept."""
        return self._total > len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Account for the next piece of the stream."""
        if not data:
            return
        self._total += len(data)
        self._hash.update(data)
        room = self._cap - len(self._buffer)
        if room > 0:
            self._buffer += data[:room]

    def summary(self) -> StreamSummary:
        """What was captured so far."""
        return StreamSummary(
            data=bytes(self._buffer),
            total_bytes=self._total,
            truncated=self.truncated,
            sha256=self._hash.hexdigest(),
        )
