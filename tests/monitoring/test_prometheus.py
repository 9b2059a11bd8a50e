"""``GET /metrics``: access, names and units per Prometheus conventions, and promtool's verdict."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tend.auth.models import Role
from tend.monitoring.prometheus import exposition_name
from tend.monitoring.registry import METRICS, Sample
from tests.conftest import make_settings, start_harness
from tests.monitoring.alert_support import Alerting, alerting, fs, snapshot, started

__all__ = ["alerting"]

PROMTOOL = shutil.which("promtool")


def parse(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], name: str, sample: str | None = None, **labels: str) -> float:
    family = families[name]
    found = [
        s.value
        for s in family.samples
        if s.name == (sample or name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, family.samples)
    return float(found[0])


def promtool_check(text: str) -> None:
    """Pipe the exposition through ``promtool check metrics``; it must find nothing."""
    if PROMTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("promtool (Debian package prometheus) is required in CI")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""
    assert done.stderr.strip() == ""


async def scrape(alerting: Alerting, headers: dict[str, str] | None = None) -> str:
    response = await alerting.h.client.get(
        "/metrics", headers=alerting.viewer if headers is None else headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_need_a_bearer_token(tmp_path: Path, database_target: dict[str, Any]) -> None:
    async with started(tmp_path, database_target) as alerting:
        h = alerting.h
        anonymous = await h.client.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "Unauthorized"
        assert "TEND_METRICS_PUBLIC" in anonymous.json()["detail"]
        assert (await h.client.get("/metrics", headers=h.bearer("garbage"))).status_code == 401
        admin = await h.user(Role.ADMIN)
        revoked = await h.api_token(admin, revoked=True)
        assert (await h.client.get("/metrics", headers=revoked)).status_code == 401
        scraper = await h.api_token(admin, role=Role.VIEWER)
        assert "tend_build_info" in await scrape(alerting, scraper)
        assert "/metrics" not in h.app.openapi()["paths"]
    public = make_settings(tmp_path, **database_target, metrics_public=True, scheduler=False)
    async with start_harness(public, first_start=False) as h:
        assert (await h.client.get("/metrics")).status_code == 200


async def test_fleet_values_follow_prometheus_conventions(alerting: Alerting) -> None:
    web = snapshot(
        "web-1",
        alerting.clock.now,
        fs("/", 93.5),
        fs('/mnt/odd "name"', 1.0),
        Sample.of("cpu_count", 4),
        Sample.of("cpu_core_usage_percent", 50, cpu="0"),
        Sample.of("processes_total", 120),
        Sample.of("uptime_seconds", 3600),
        Sample.of("memory_available_bytes", 2**30),
        Sample.of("load15", 0.5),
    )
    down = snapshot("db-1", alerting.clock.now, error="ssh: connection refused")
    await alerting.h.context.monitoring.latest.put(web)
    await alerting.h.context.monitoring.latest.put(down)
    await alerting.h.client.get("/api/v1/nope", headers=alerting.viewer)  # counted as a 404
    text = await scrape(alerting)
    families = parse(text)

    assert value(families, "tend_filesystem_used_ratio", host="web-1", mount="/") == 0.935
    assert value(families, "tend_filesystem_used_ratio", mount='/mnt/odd "name"') == 0.01
    ratio = families["tend_filesystem_used_ratio"]
    assert ratio.type == "gauge"
    assert ratio.documentation == "filesystem space in use (ratio from 0 to 1)"
    assert value(families, "tend_cpu_core_usage_ratio", host="web-1", cpu="0") == 0.5
    assert value(families, "tend_cpus", host="web-1") == 4
    assert value(families, "tend_processes", host="web-1") == 120
    assert value(families, "tend_uptime_seconds", host="web-1") == 3600
    assert value(families, "tend_memory_available_bytes", host="web-1") == 2**30
    assert value(families, "tend_host_up", host="web-1") == 1
    assert value(families, "tend_host_up", host="db-1") == 0
    assert value(families, "tend_collection_timestamp_seconds", host="db-1") == (
        alerting.clock.now.timestamp()
    )
    # tend's own metrics.
    assert value(families, "tend_http_requests", "tend_http_requests_total", status="404") >= 1
    assert value(families, "tend_jobs", state="running") == 0
    assert value(families, "tend_alerts", state="firing", severity="critical") == 0
    assert value(families, "tend_build_info", version=__import__("tend").__version__) == 1
    assert "tend_process_cpu_seconds" in families
    assert all(name.startswith("tend_") for name in families)
    promtool_check(text)


async def test_alert_counts_are_exposed(alerting: Alerting) -> None:
    await alerting.add_host("db-1")
    await alerting.put(snapshot("db-1", alerting.clock.now, error="timeout"))
    await alerting.evaluate()
    alerting.clock.advance(60)
    await alerting.evaluate()
    families = parse(await scrape(alerting))
    assert value(families, "tend_alerts", state="firing", severity="critical") == 1
    assert value(families, "tend_alerts", state="pending", severity="warning") == 0


def test_every_registry_metric_has_a_clean_exposition_name() -> None:
    names = [exposition_name(spec)[0] for spec in METRICS.values()]
    assert len(set(names)) == len(names)
    for name in names:
        assert name.startswith("tend_")
        assert not name.endswith(("_total", "_count", "_sum", "_bucket", "_percent"))
    assert exposition_name(METRICS["memory_available_percent"]) == (
        "tend_memory_available_ratio",
        0.01,
    )
    assert exposition_name(METRICS["swap_used_bytes"]) == ("tend_swap_used_bytes", 1.0)


async def test_a_real_collection_of_this_machine_is_clean(
    tmp_path: Path, database_target: dict[str, Any]
) -> None:
    async with started(
        tmp_path, database_target, scheduler=True, monitor=True, monitor_interval=1
    ) as alerting:
        latest = alerting.h.context.monitoring.latest
        for _ in range(400):
            if await latest.get("local") is not None:
                break
            await asyncio.sleep(0.05)
        local = await latest.get("local")
        assert local is not None, "the monitor loop collected nothing"
        text = await scrape(alerting)
        families = parse(text)
        assert value(families, "tend_host_up", host="local") == 1
        assert value(families, "tend_cpus", host="local") == os.cpu_count()
        assert value(families, "tend_collections", "tend_collections_total", outcome="ok") >= 1
        promtool_check(text)
