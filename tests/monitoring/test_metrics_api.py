"""The monitoring API as a client sees it: latest values with units and host state, series at
each resolution with bad input refused, the catalog, and a live view fed by the real loop."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from tend.auth.models import Role
from tend.monitoring.registry import METRICS, Sample, Snapshot
from tend.monitoring.store import HostState
from tend.settings import Settings
from tests.conftest import Harness, start_harness
from tests.jobs.celery_support import REDIS_URL, require_service


def minute_ago(minutes: float) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes)


async def store_round(
    harness: Harness,
    snapshots: list[Snapshot],
    states: list[HostState],
    *,
    cache_states: bool = True,
) -> None:
    """Store a round as the monitor loop does: latest values (and states) cached, all in the DB."""
    monitoring = harness.context.monitoring
    await monitoring.store.write_round(snapshots, states)
    await monitoring.latest.put_many(snapshots, states if cache_states else [])


async def wait_job(harness: Harness, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(200):
        job = (await harness.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_host_never_collected_has_no_values_and_unknown_state(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    response = await harness.client.get("/api/v1/hosts/local/metrics", headers=admin_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["metrics"] == []
    assert (body["state"], body["since"], body["collected_at"]) == ("unknown", None, None)


async def test_unknown_hosts_are_404(harness: Harness, admin_headers: dict[str, str]) -> None:
    for path in ("metrics", "series?metric=load1", "live"):
        response = await harness.client.get(f"/api/v1/hosts/nope/{path}", headers=admin_headers)
        assert response.status_code == 404, path
        assert response.json()["error"] == "NotFound"


async def test_latest_values_carry_unit_description_labels_and_state(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    at = datetime.now(UTC).replace(microsecond=0)
    since = at - timedelta(hours=3)
    top = [{"pid": 42, "name": "postgres", "user": "pg", "cpu_percent": 31.0, "memory_bytes": 9}]
    snapshot = Snapshot(
        "local",
        at,
        [
            Sample.of("load1", 0.75),
            Sample.of("filesystem_used_percent", 91.5, mount="/"),
            Sample.of("filesystem_used_percent", 12.0, mount="/boot"),
        ],
        info={"top_cpu": top},
    )
    await store_round(harness, [snapshot], [HostState("local", "up", since, at, at, None, 0)])

    response = await harness.client.get("/api/v1/hosts/local/metrics", headers=viewer)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "up"
    assert datetime.fromisoformat(body["since"]) == since
    assert datetime.fromisoformat(body["collected_at"]) == at
    assert body["info"]["top_cpu"] == top
    by_key = {(m["name"], tuple(m["labels"].items())): m for m in body["metrics"]}
    root = by_key[("filesystem_used_percent", (("mount", "/"),))]
    assert root["value"] == 91.5
    assert root["unit"] == "percent"
    assert root["description"] == METRICS["filesystem_used_percent"].description
    assert by_key[("load1", ())]["unit"] == "count"
    assert len(body["metrics"]) == 3


async def test_an_unreachable_host_shows_since_and_the_error(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    state = HostState("local", "unreachable", at, at, at - timedelta(minutes=5), "refused", 4)
    down = Snapshot("local", at, [Sample.of("host_up", 0)], error="refused")
    # The state only in the database (its cached copy expired): read from there.
    await store_round(harness, [down], [state], cache_states=False)
    body = (await harness.client.get("/api/v1/hosts/local/metrics", headers=admin_headers)).json()
    assert (body["state"], body["last_error"], body["consecutive_failures"]) == (
        "unreachable",
        "refused",
        4,
    )
    assert datetime.fromisoformat(body["since"]) == at
    assert [(m["name"], m["value"]) for m in body["metrics"]] == [("host_up", 0.0)]


async def test_bad_series_requests_are_refused_with_reasons(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    url = "/api/v1/hosts/local/series"
    unknown = await harness.client.get(url, params={"metric": "cpu_bogus"}, headers=admin_headers)
    assert unknown.status_code == 422
    assert unknown.json()["detail"]["valid_metrics"] == sorted(METRICS)

    backwards = await harness.client.get(
        url,
        params={"metric": "load1", "from": "2026-03-02T12:00:00Z", "to": "2026-03-02T11:00:00Z"},
        headers=admin_headers,
    )
    assert backwards.status_code == 422
    assert "must be before" in backwards.json()["detail"]

    for params in (
        {"metric": "load1", "step": "0"},
        {"metric": "load1", "from": "yesterday"},
        {"metric": "load1", "label": "mount=/"},
        {"metric": "filesystem_used_percent", "label": "device=sda"},
        {"metric": "filesystem_used_percent", "label": "mount"},
        {},
    ):
        response = await harness.client.get(url, params=params, headers=admin_headers)
        assert response.status_code == 422, params
        assert response.json()["error"] in ("ValidationError", "ValidationFailed")


async def test_series_from_raw_samples_and_from_rollups(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    start = minute_ago(30)
    snapshots = [
        Snapshot(
            "local",
            start + timedelta(seconds=10 * i),
            [
                Sample.of("cpu_usage_percent", float(i // 6)),
                Sample.of("filesystem_used_percent", 50.0, mount="/"),
                Sample.of("filesystem_used_percent", 80.0, mount="/var"),
            ],
        )
        for i in range(120)  # 20 minutes, minute k averages k
    ]
    await store_round(harness, snapshots, [])
    url = "/api/v1/hosts/local/series"
    window = {"from": start.isoformat(), "to": (start + timedelta(minutes=20)).isoformat()}

    raw = await harness.client.get(
        url, params={"metric": "cpu_usage_percent", "step": 10, **window}, headers=admin_headers
    )
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert (body["resolution"], body["step"], body["unit"]) == ("raw", 10, "percent")
    assert len(body["series"][0]["points"]) == 120

    job = await harness.client.post(
        "/api/v1/jobs", json={"kind": "monitoring.rollup"}, headers=admin_headers
    )
    assert job.status_code == 202, job.text
    done = await wait_job(harness, admin_headers, job.json()["job_id"])
    assert done["state"] == "succeeded", done
    # (The scheduler's own periodic rollup may have done the work first: either way it is done.)
    assert done["result"]["done_1m"] is not None

    minute = await harness.client.get(
        url, params={"metric": "cpu_usage_percent", "step": 60, **window}, headers=admin_headers
    )
    body = minute.json()
    assert body["resolution"] == "1m"
    ts0 = int(start.timestamp())
    assert body["series"] == [
        {"labels": {}, "points": [[ts0 + 60 * k, k, k, k] for k in range(20)]}
    ]

    five = await harness.client.get(
        url,
        params={"metric": "filesystem_used_percent", "step": 300, "label": "mount=/var", **window},
        headers=admin_headers,
    )
    series = five.json()["series"]
    assert [s["labels"] for s in series] == [{"mount": "/var"}]
    assert {p[1] for p in series[0]["points"]} == {80.0}


async def test_huge_ranges_are_served_coarse(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    await store_round(harness, [Snapshot("local", minute_ago(10), [Sample.of("load1", 1.0)])], [])
    now = datetime.now(UTC)
    response = await harness.client.get(
        "/api/v1/hosts/local/series",
        params={
            "metric": "load1",
            "from": (now - timedelta(days=3650)).isoformat(),
            "to": now.isoformat(),
            "step": 1,
        },
        headers=admin_headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["coarsened"] is True
    assert body["resolution"] == "1h"
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    cap = harness.context.settings.monitor_series_max_points
    assert span.total_seconds() / body["step"] <= cap + 1


async def test_the_catalog_lists_every_metric(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    response = await harness.client.get("/api/v1/metrics/catalog", headers=viewer)
    assert response.status_code == 200
    catalog = {m["name"]: m for m in response.json()}
    assert set(catalog) == set(METRICS)
    assert catalog["filesystem_used_percent"] == {
        "name": "filesystem_used_percent",
        "unit": "percent",
        "description": METRICS["filesystem_used_percent"].description,
        "labels": ["mount"],
    }


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"monitor": True, "monitor_interval": 3600.0, "monitor_live_interval": 0.25}
    )


async def test_the_live_view_streams_fresh_snapshots_while_open(live_settings: Settings) -> None:
    async with start_harness(live_settings) as harness:
        token = await harness.api_token(await harness.user(Role.VIEWER))
        monitoring = harness.context.monitoring
        loop = monitoring.loop
        assert loop is not None
        response = await harness.client.get(
            "/api/v1/hosts/local/live", params={"seconds": 3}, headers=token
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(block.split("data: ", 1)[1])
            for block in response.text.split("\n\n")
            if block.startswith("event: metrics")
        ]
        # Collected every 0.25 s while watched (the interval is an hour): about 12 in 3 s, at
        # least 3 even on a very busy machine; without the watch there would be at most one.
        assert len(events) >= 3, events
        stamps = [e["collected_at"] for e in events]
        assert len(set(stamps)) == len(stamps)
        assert all(e["state"] == "up" for e in events)
        cpu = [m for m in events[-1]["metrics"] if m["name"] == "cpu_usage_percent"]
        assert cpu
        assert cpu[0]["unit"] == "percent"
        assert 0.0 <= cpu[0]["value"] <= 100.0
        # The watch ended with the stream: the host is back on its hourly schedule.
        assert await monitoring.watchers.hosts() == set()
        # (A round in flight may finish, and the next collection was due in 0.25 s: at most
        # two more, where the watch would have made three or more.)
        attempts = loop.hosts["local"].attempts
        await asyncio.sleep(1.0)
        assert loop.hosts["local"].attempts <= attempts + 2


async def test_replicas_share_latest_values_and_watches_through_redis(settings: Settings) -> None:
    require_service("Redis", REDIS_URL)
    shared = settings.model_copy(
        update={"redis_url": SecretStr(REDIS_URL), "monitor_latest_ttl": 60}
    )
    async with start_harness(shared) as first, start_harness(shared, first_start=False) as second:
        assert type(first.context.monitoring.latest).__name__ == "RedisLatestValues"
        at = datetime.now(UTC).replace(microsecond=0)
        snapshot = Snapshot(
            "local",
            at,
            [Sample.of("load5", 0.5), Sample.of("filesystem_used_percent", 7.0, mount="/a,b")],
            info={"failed_units": ["x.service"]},
            error="partial: no systemd",
        )
        await store_round(first, [snapshot], [HostState("local", "up", at, at, at, None, 0)])
        try:
            viewer = await second.role_headers(Role.VIEWER)
            body = (await second.client.get("/api/v1/hosts/local/metrics", headers=viewer)).json()
            assert datetime.fromisoformat(body["collected_at"]) == at
            assert (body["state"], datetime.fromisoformat(body["since"])) == ("up", at)
            assert body["error"] == "partial: no systemd"
            assert body["info"] == {"failed_units": ["x.service"]}
            assert {
                (m["name"], m["value"], tuple(m["labels"].items())) for m in body["metrics"]
            } == {
                ("load5", 0.5, ()),
                ("filesystem_used_percent", 7.0, (("mount", "/a,b"),)),
            }
            assert [s.host for s in await second.context.monitoring.latest.all()] == ["local"]

            async with second.context.monitoring.watch("local"):
                assert await first.context.monitoring.watchers.hosts() == {"local"}
            assert await first.context.monitoring.watchers.hosts() == set()
        finally:
            await first.context.monitoring.latest.forget("local")
        assert await second.context.monitoring.latest.get("local") is None


async def test_series_defaults_to_the_hour_before_to(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    url = "/api/v1/hosts/local/series"
    recent = await harness.client.get(url, params={"metric": "load1"}, headers=admin_headers)
    assert recent.status_code == 200
    body = recent.json()
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert timedelta(hours=1) <= span <= timedelta(hours=1, seconds=2 * body["step"])
    assert datetime.fromisoformat(body["to"]) >= datetime.now(UTC) - timedelta(seconds=60)
    past = await harness.client.get(
        url, params={"metric": "load1", "to": "2026-01-01T12:00:00+00:00"}, headers=admin_headers
    )
    assert past.status_code == 200
    assert past.json()["from"].startswith("2026-01-01T11:00")
