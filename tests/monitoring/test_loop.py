"""The monitor loop on a controllable clock: host states with since-when, backoff, the live
view's 1 s collections, one collecting process per lease, rounds written in one batch."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, text

from tend.db import Database
from tend.execution.targets import HostSnapshot
from tend.hosts.models import Host
from tend.migrate import upgrade_database
from tend.monitoring.latest import LatestValues, RedisLatestValues
from tend.monitoring.loop import MonitorLoop
from tend.monitoring.models import MetricSample
from tend.monitoring.registry import Sample, Snapshot
from tend.monitoring.schedule import LoopConfig
from tend.monitoring.store import MetricStore
from tend.monitoring.watchers import LiveWatchers, RedisLiveWatchers
from tend.settings import Settings
from tests.conftest import start_harness

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return 1000.0 + self.seconds


class FakeCollector:
    """Answers with one CPU sample; hosts in ``down`` fail the way real collectors report it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.down: set[str] = set()
        self.raising: set[str] = set()
        self.calls: dict[str, list[float]] = defaultdict(list)

    async def collect(self, host: HostSnapshot) -> Snapshot:
        self.calls[host.name].append(self.clock.seconds)
        at = self.clock.now()
        if host.name in self.raising:
            raise ConnectionResetError("peer went away")
        if host.name in self.down:
            return Snapshot(host.name, at, [Sample.of("host_up", 0)], error="connection refused")
        return Snapshot(host.name, at, [Sample.of("cpu_usage_percent", 12.5)], info={"top_cpu": []})


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    await upgrade_database(db)
    async with db.session() as session:
        session.add(Host(name="web-1", address="10.0.0.1", transport="ssh"))
    yield db
    await db.dispose()


def make_loop(
    database: Database,
    clock: FakeClock,
    collector: Any,
    *,
    owner: str = "node-a",
    watchers: LiveWatchers | None = None,
    **config: Any,
) -> MonitorLoop:
    return MonitorLoop(
        database=database,
        store=MetricStore(database),
        latest=LatestValues(),
        watchers=watchers or LiveWatchers(),
        collectors=lambda target: collector,
        owner=owner,
        config=LoopConfig(**{"interval": 10.0, "live_interval": 1.0, **config}),
        clock=clock,
    )


async def run_for(clock: FakeClock, seconds: float, *loops: MonitorLoop, step: float = 0.5) -> None:
    """Advance the clock in small steps, letting each loop tick and finish its round."""
    for _ in range(round(seconds / step)):
        clock.seconds += step
        for loop in loops:
            await loop.run_once()


async def test_unreachable_after_failures_with_since_and_back_up(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    loop = make_loop(database, clock, collector, unreachable_after=2)
    await run_for(clock, 10, loop)
    assert set(collector.calls) == {"local", "web-1"}
    first = loop.hosts["web-1"].state
    assert first is not None
    assert (first.state, first.since, first.consecutive_failures) == ("up", first.last_success, 0)

    collector.down.add("web-1")
    await run_for(clock, 10, loop)
    one = await loop.store.state("web-1")
    assert one is not None
    assert (one.state, one.since, one.consecutive_failures) == ("up", first.since, 1)
    assert one.last_error == "connection refused"
    latest = await loop.latest.get("web-1")
    assert latest is not None
    assert latest.value("host_up") == 0.0
    assert latest.value("cpu_usage_percent") is None

    while len(collector.calls["web-1"]) < 3:
        await run_for(clock, 1, loop)
    failed_at = T0 + timedelta(seconds=collector.calls["web-1"][-1])
    down = await loop.store.state("web-1")
    assert down is not None
    assert (down.state, down.since, down.consecutive_failures) == ("unreachable", failed_at, 2)
    assert down.last_success == first.last_success
    assert (await loop.store.state("local")).state == "up"  # type: ignore[union-attr]

    collector.down.clear()
    while len(collector.calls["web-1"]) < 4:
        await run_for(clock, 1, loop)
    back = await loop.store.state("web-1")
    assert back is not None
    healed_at = T0 + timedelta(seconds=collector.calls["web-1"][-1])
    assert (back.state, back.since, back.consecutive_failures) == ("up", healed_at, 0)
    assert back.last_error is None
    latest = await loop.latest.get("web-1")
    assert latest is not None
    assert latest.value("host_up") == 1.0


async def test_a_host_never_reached_is_unreachable_at_its_first_failure(
    database: Database,
) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    collector.raising.add("web-1")
    loop = make_loop(database, clock, collector, unreachable_after=3)
    await run_for(clock, 10, loop)
    state = await loop.store.state("web-1")
    assert state is not None
    assert state.state == "unreachable"
    assert state.last_success is None
    assert state.last_error == "collector failed: ConnectionResetError: peer went away"


async def test_backoff_doubles_and_is_capped(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    collector.down.add("web-1")
    loop = make_loop(database, clock, collector, backoff_max=60.0, unreachable_after=2)
    await run_for(clock, 330, loop)
    times = collector.calls["web-1"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:6] == pytest.approx([10, 20, 40, 60, 60, 60], abs=1.01)
    # The healthy host kept its interval all along.
    local = collector.calls["local"]
    assert [b - a for a, b in itertools.pairwise(local)] == pytest.approx(
        [10] * (len(local) - 1), abs=1.01
    )


async def test_a_watched_host_is_collected_every_second(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    watchers = LiveWatchers()
    loop = make_loop(database, clock, collector, watchers=watchers)
    await run_for(clock, 10, loop)
    assert {host: len(calls) for host, calls in collector.calls.items()} == {
        "local": 1,
        "web-1": 1,
    }

    async with watchers.watch("web-1"):
        start = clock.seconds
        await loop.run_once()  # a new watch is served at once
        await run_for(clock, 20, loop, step=0.25)
        live = [t for t in collector.calls["web-1"] if t >= start]
    gaps = [b - a for a, b in itertools.pairwise(live)]
    assert len(live) >= 20
    assert max(gaps) <= 1.0
    assert min(gaps) >= 0.75
    assert len(collector.calls["local"]) <= 4  # still every 10 s

    count = len(collector.calls["web-1"])
    await run_for(clock, 30, loop)
    assert len(collector.calls["web-1"]) - count <= 4  # back to the normal interval


async def test_only_the_lease_holder_collects(database: Database) -> None:
    clock = FakeClock()
    first, second = FakeCollector(clock), FakeCollector(clock)
    a = make_loop(database, clock, first, owner="node-a")
    b = make_loop(database, clock, second, owner="node-b")
    await run_for(clock, 30, a, b)
    assert (a.is_owner, b.is_owner) == (True, False)
    assert len(first.calls["local"]) == 3
    assert second.calls == {}

    up_since = a.hosts["local"].state.since  # type: ignore[union-attr]

    await a.stop()  # hands the lease over at once
    await run_for(clock, 30, b)
    assert b.is_owner
    assert len(second.calls["local"]) >= 2
    assert len(first.calls["local"]) == 3
    # The new owner carries on from the stored host states.
    state = b.hosts["local"].state
    assert state is not None
    assert (state.state, state.since) == ("up", up_since)


async def test_each_round_is_stored_with_host_up(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    collector.down.add("web-1")
    loop = make_loop(database, clock, collector)
    await run_for(clock, 10, loop)
    async with database.session() as session:
        rows = (
            await session.execute(
                select(MetricSample.host, MetricSample.metric, MetricSample.value).order_by(
                    MetricSample.host, MetricSample.metric
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("local", "cpu_usage_percent", 12.5),
        ("local", "host_up", 1.0),
        ("web-1", "host_up", 0.0),
    ]
    # The cache carries the same host states as the database.
    for host in ("local", "web-1"):
        _, cached = await loop.latest.get_with_state(host)
        assert cached == await loop.store.state(host)


async def test_a_hanging_collector_times_out(database: Database) -> None:
    clock = FakeClock()
    never = asyncio.Event()

    class Hanging(FakeCollector):
        async def collect(self, host: HostSnapshot) -> Snapshot:
            if host.name == "web-1":
                await never.wait()
            return await super().collect(host)

    loop = make_loop(database, clock, Hanging(clock), timeout=0.05)
    await run_for(clock, 10, loop)
    state = await loop.store.state("web-1")
    assert state is not None
    assert state.last_error == "collection timed out after 0.05 s"
    assert (await loop.store.state("local")).state == "up"  # type: ignore[union-attr]


async def test_hosts_leaving_the_inventory_are_forgotten(database: Database) -> None:
    clock = FakeClock()
    loop = make_loop(database, clock, FakeCollector(clock))
    await run_for(clock, 10, loop)
    assert await loop.latest.get("web-1") is not None
    async with database.session() as session:
        await session.execute(delete(Host).where(Host.name == "web-1"))
    await run_for(clock, 10, loop)
    assert await loop.latest.get("web-1") is None
    assert await loop.store.state("web-1") is None
    assert "web-1" not in loop.hosts


async def test_an_empty_inventory_costs_nothing(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    async with database.session() as session:
        await session.execute(delete(Host))
    loop = make_loop(database, clock, collector)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    await run_for(clock, 30, loop)  # 60 ticks
    event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert collector.calls == {}
    loads = [s for s in statements if s.startswith("SELECT hosts.id")]
    checks = [s for s in statements if s.startswith("SELECT count(*)") and "FROM hosts" in s]
    assert len(loads) == 1  # nothing changed, so the inventory was read once
    assert 14 <= len(checks) <= 16  # a one-row count every 2 s looks for changes
    others = [s for s in statements if s not in loads and s not in checks]
    assert all("leases" in s for s in others)  # and the lease every 5 s: read + renew
    assert len(others) <= 7 * 2
    assert loop.sleep_time() > 0


@pytest.mark.parametrize("monitor", [True, False])
async def test_the_server_runs_the_loop_unless_disabled(settings: Settings, monitor: bool) -> None:
    enabled = settings.model_copy(update={"monitor": monitor, "monitor_interval": 3600.0})
    async with start_harness(enabled) as harness:
        loop = harness.context.monitoring.loop
        assert (loop is not None) is monitor
    assert harness.context.monitoring.loop is None  # stopped with the server


async def test_a_dead_redis_does_not_stop_collection(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    dead = "redis://127.0.0.1:1/0"
    loop = MonitorLoop(
        database=database,
        store=MetricStore(database),
        latest=RedisLatestValues(dead, ttl=60),
        watchers=RedisLiveWatchers(dead),
        collectors=lambda target: collector,
        owner="node-a",
        config=LoopConfig(interval=10.0),
        clock=clock,
    )
    try:
        await run_for(clock, 10, loop)
        async with loop.watchers.watch("web-1"):  # degrades to the normal interval
            await run_for(clock, 2, loop)
    finally:
        await loop.latest.close()
        await loop.watchers.close()
    assert set(collector.calls) == {"local", "web-1"}
    state = await loop.store.state("web-1")
    assert state is not None
    assert state.state == "up"


async def test_hosts_due_close_together_share_a_round(database: Database) -> None:
    clock = FakeClock()
    collector = FakeCollector(clock)
    async with database.session() as session:
        session.add_all(
            Host(name=f"node-{i:02d}", address=f"10.0.1.{i}", transport="ssh") for i in range(40)
        )
    loop = make_loop(database, clock, collector)
    rounds: list[int] = []

    async def count(snapshots: list[Snapshot], states: list[Any]) -> None:
        rounds.append(len(snapshots))

    loop.listeners.append(count)
    await run_for(clock, 10, loop, step=0.25)  # everyone's first collection
    rounds.clear()
    await run_for(clock, 30, loop, step=0.25)
    # 42 hosts x 3 intervals, in slots of 1 s: at most ~10 rounds (writes) per interval.
    assert sum(rounds) == 42 * 3
    assert len(rounds) <= 3 * 10 + 1
    gaps = [b - a for calls in collector.calls.values() for a, b in itertools.pairwise(calls)]
    assert 9.0 <= min(gaps) <= max(gaps) <= 10.0  # and nobody missed an interval


async def test_a_failed_write_is_retried_with_the_next_round(database: Database) -> None:
    clock = FakeClock()
    loop = make_loop(database, clock, FakeCollector(clock))
    await run_for(clock, 10, loop)

    async def rename(old: str, new: str) -> None:
        async with database.session() as session:
            await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    await rename("metric_samples", "metric_samples_away")  # the database refuses the writes
    try:
        await run_for(clock, 10, loop)
    finally:
        await rename("metric_samples_away", "metric_samples")
    await run_for(clock, 10, loop)
    async with database.session() as session:
        rows = await session.execute(
            select(MetricSample.host, func.count())
            .where(MetricSample.metric == "host_up")
            .group_by(MetricSample.host)
        )
        assert dict(rows.all()) == {"local": 3, "web-1": 3}
