"""The latest snapshot of every host, kept where every process can read it."""

from __future__ import annotations

from tend.monitoring.registry import Snapshot


class LatestValues:
    """Latest snapshot per host, in this process's memory (one-machine deployments)."""

    def __init__(self) -> None:
        """Start empty."""
        self._by_host: dict[str, Snapshot] = {}

    async def put(self, snapshot: Snapshot) -> None:
        """Remember a host's newest snapshot."""
        self._by_host[snapshot.host] = snapshot

    async def get(self, host: str) -> Snapshot | None:
        """Return a host's newest snapshot, if any."""
        return self._by_host.get(host)

    async def all(self) -> list[Snapshot]:
        """Return every host's newest snapshot, by host name."""
        return [self._by_host[name] for name in sorted(self._by_host)]

    async def forget(self, host: str) -> None:
        """Drop a host (deleted from the inventory)."""
        self._by_host.pop(host, None)
