"""The diagnostics API on SQLite and PostgreSQL: diagnose a host, async jobs, the registry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tend.auth.models import Role
from tend.diagnostics.analyzers import ANALYZERS
from tests.conftest import Harness
from tests.execution.sshd import free_port


async def wait_job(h: Harness, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job stuck in {job['state']}"
        await asyncio.sleep(0.05)


async def test_a_viewer_diagnoses_the_local_host(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    response = await harness.client.post(
        "/api/v1/hosts/local/diagnose", headers=viewer, json={"analyzers": ["zombies", "clock"]}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["host"] == "local"
    assert report["analyzers"] == ["zombies", "clock"]
    assert {f["analyzer"] for f in report["findings"]} == {"zombies", "clock"}
    ranks = ["critical", "warning", "info", "ok"]
    order = [ranks.index(f["severity"]) for f in report["findings"]]
    assert order == sorted(order)
    assert report["status"] == report["findings"][0]["severity"]
    assert sum(report["counts"].values()) == len(report["findings"])
    probe_ids = {p["id"] for p in report["probes"]}
    assert {"clock", "ps", "timedatectl", "chrony"} <= probe_ids
    # Every command it ran is in the audit log under the report's run id.
    audit = await harness.client.get(
        "/api/v1/audit", headers=admin_headers, params={"host": "local", "limit": 1000}
    )
    mine = [r for r in audit.json() if r["run_id"] == report["run_id"]]
    ran = [p for p in report["probes"] if p["status"] != "refused"]
    assert len([r for r in mine if r["event"] == "run_intent"]) == len(ran)
    assert len([r for r in mine if r["event"] == "run_result"]) == len(ran)
    assert {r["actor"] for r in mine} == {"viewer1"}
    assert all(r["risk"] == "read" for r in mine)


async def test_every_analyzer_on_the_local_host(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    response = await harness.client.post("/api/v1/hosts/local/diagnose", headers=admin_headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["analyzers"] == list(ANALYZERS)
    assert {f["analyzer"] for f in report["findings"]} == set(ANALYZERS)
    for item in report["findings"]:
        assert item["severity"] in ("ok", "info", "warning", "critical")
        for step in item["next_steps"]:
            assert step["risk"] in ("read", "change", "forbidden")
            assert step["reason"]


async def test_unknown_host_and_unknown_analyzer(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    missing = await harness.client.post("/api/v1/hosts/ghost/diagnose", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFound"
    unknown = await harness.client.post(
        "/api/v1/hosts/local/diagnose",
        headers=admin_headers,
        json={"analyzers": ["disk", "crystal-ball"]},
    )
    assert unknown.status_code == 422
    detail = unknown.json()["detail"]
    assert "crystal-ball" in detail
    assert all(analyzer in detail for analyzer in ANALYZERS)
    extra = await harness.client.post(
        "/api/v1/hosts/local/diagnose", headers=admin_headers, json={"analyser": ["disk"]}
    )
    assert extra.status_code == 422


async def test_async_diagnosis_is_a_job(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await harness.client.post(
        "/api/v1/hosts/local/diagnose",
        headers=operator,
        json={"analyzers": ["disk"], "async": True},
    )
    assert response.status_code == 202, response.text
    job = await wait_job(harness, operator, response.json()["job_id"])
    assert job["kind"] == "diagnose"
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["host"] == "local"
    assert [f["analyzer"] for f in job["result"]["findings"]] == ["disk"] * len(
        job["result"]["findings"]
    )
    events = await harness.client.get(f"/api/v1/jobs/{job['id']}/events", headers=operator)
    assert '"message":"analyzing"' in events.text


async def test_an_unreachable_host_is_critical(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    created = await harness.client.post(
        "/api/v1/hosts",
        headers=admin_headers,
        json={
            "name": "gone",
            "address": "127.0.0.1",
            "port": free_port("127.0.0.1"),
            "transport": "ssh",
            "trust_on_first_use": True,
        },
    )
    assert created.status_code == 201, created.text
    response = await harness.client.post("/api/v1/hosts/gone/diagnose", headers=admin_headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "critical"
    [finding] = report["findings"]
    assert finding["analyzer"] == "connection"
    assert finding["title"] == "gone cannot be reached"
    assert [p["id"] for p in report["probes"]] == ["clock"]


async def test_the_registry_is_listed(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    response = await harness.client.get("/api/v1/diagnostics/analyzers", headers=viewer)
    assert response.status_code == 200
    listed = response.json()
    assert [a["id"] for a in listed] == list(ANALYZERS)
    for analyzer in listed:
        assert analyzer["description"]
        assert analyzer["commands"], analyzer["id"]
        assert all(command[:2] != ["sh", "-c"] for command in analyzer["commands"])
    ports = next(a for a in listed if a["id"] == "listening_ports")
    assert ports["baseline"] is True
    assert ["env", "LC_ALL=C", "ss", "-H", "-l", "-n", "-t", "-u", "-p"] in ports["commands"]
