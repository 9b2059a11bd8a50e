"""Webhook notifications end to end: the periodic job evaluates, a job delivers to a real HTTP
receiver on 127.0.0.1 with retries, and every attempt is recorded."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tend.db import Database
from tend.jobs.schemas import JobPublic
from tend.monitoring.alerts.service import AlertService
from tests.conftest import make_settings
from tests.monitoring.alert_support import Alerting, WebhookReceiver, fs, snapshot, started

FINISHED = {"succeeded", "failed", "cancelled"}


async def finished_jobs(alerting: Alerting, kind: str, count: int) -> list[JobPublic]:
    """Wait until ``count`` jobs of ``kind`` have finished (polling the job table)."""
    jobs = alerting.h.context.jobs
    for _ in range(600):
        done = [j for j in await jobs.list(kind=kind) if j.state in FINISHED]
        if len(done) >= count:
            return done
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} {kind} job(s) did not finish: {await jobs.list(kind=kind)}")


async def evaluate_by_job(alerting: Alerting, notify_jobs: int) -> dict[str, Any]:
    """Run the periodic job once, the way the scheduler does, and wait for its deliveries."""
    jobs = alerting.h.context.jobs
    before = len(await jobs.list(kind="alerts.evaluate"))
    await jobs.enqueue("alerts.evaluate", {}, requested_by="tend")
    job, *_ = await finished_jobs(alerting, "alerts.evaluate", before + 1)  # newest first
    assert job.state == "succeeded", job.error
    assert job.result is not None
    if notify_jobs:
        for notify in await finished_jobs(alerting, "alerts.notify", notify_jobs):
            assert notify.state == "succeeded", notify.error
    return job.result


async def detail(alerting: Alerting, alert_id: int) -> dict[str, Any]:
    response = await alerting.h.client.get(f"/api/v1/alerts/{alert_id}", headers=alerting.viewer)
    assert response.status_code == 200
    return dict(response.json())


async def test_a_failed_delivery_is_retried_and_every_attempt_recorded(
    tmp_path: Path, database_target: dict[str, Any]
) -> None:
    async with (
        WebhookReceiver([500]) as generic,
        WebhookReceiver() as slack,
        started(
            tmp_path,
            database_target,
            alert_webhooks=[generic.url],  # a plain URL: tend's JSON payload
            alert_notify_backoff=0.01,
        ) as alerting,
    ):
        await alerting.add_host("web-1")
        rule = {
            "name": "root-full",
            "metric": "filesystem_used_percent",
            "match_labels": {"mount": "/"},
            "threshold": 80,
            "severity": "critical",
            "notify": [{"url": slack.url, "format": "slack"}],
        }
        created = await alerting.h.client.post(
            "/api/v1/alerts/rules", json=rule, headers=alerting.operator
        )
        assert created.status_code == 201, created.text
        latest = alerting.h.context.monitoring.latest
        await latest.put(snapshot("web-1", alerting.clock.now, fs("/", 93.5), fs("/srv", 10)))

        result = await evaluate_by_job(alerting, notify_jobs=1)
        assert (result["fired"], result["notifications"]) == (1, 2)
        assert generic.answered == [500, 200]
        assert slack.answered == [200]
        first, retry = generic.received
        assert first.body == retry.body
        assert first.path == "/hook/secret-part"
        assert first.headers["content-type"] == "application/json"
        body = first.body
        assert (body["source"], body["event"]) == ("tend", "firing")
        alert = body["alert"]
        assert (alert["rule"], alert["host"], alert["labels"]) == (
            "root-full",
            "web-1",
            {"mount": "/"},
        )
        assert (alert["state"], alert["value"], alert["threshold"]) == ("firing", 93.5, 80.0)
        [message] = slack.received
        assert message.body == {
            "text": "[FIRING] critical root-full on web-1 (mount=/): "
            "filesystem_used_percent = 93.5 (> 80)"
        }

        [shown] = await alerting.alerts(state="firing")
        record = await detail(alerting, shown["id"])
        by_format = {n["target"]["format"]: n for n in record["notifications"]}
        retried = by_format["json"]
        assert retried["status"] == "delivered"
        assert [(a["attempt"], a["status_code"]) for a in retried["attempts"]] == [
            (1, 500),
            (2, 200),
        ]
        assert retried["attempts"][0]["error"] == "HTTP 500: receiver is down"
        assert retried["attempts"][1]["error"] is None
        assert retried["delivered_at"] is not None
        assert [a["status_code"] for a in by_format["slack"]["attempts"]] == [200]

        alerting.clock.advance(60)
        await latest.put(snapshot("web-1", alerting.clock.now, fs("/", 40), fs("/srv", 10)))
        result = await evaluate_by_job(alerting, notify_jobs=2)
        assert (result["resolved"], result["notifications"]) == (1, 2)
        assert generic.received[-1].body["event"] == "resolved"
        assert generic.received[-1].body["alert"]["state"] == "resolved"
        assert slack.received[-1].body["text"].startswith("[RESOLVED] critical root-full on web-1")
        assert "= 40 (> 80)" in slack.received[-1].body["text"]
        events = [n["event"] for n in (await detail(alerting, shown["id"]))["notifications"]]
        assert sorted(events) == ["firing", "firing", "resolved", "resolved"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_and_unreachable_receivers_end_failed(
    tmp_path: Path, database_target: dict[str, Any]
) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}/hook"
    async with (
        WebhookReceiver([], default=400) as refusing,
        started(
            tmp_path,
            database_target,
            alert_webhooks=[{"url": refusing.url}, {"url": nowhere, "format": "slack"}],
            alert_notify_backoff=0.01,
            alert_notify_attempts=3,
        ) as alerting,
    ):
        await alerting.add_host("web-1")
        latest = alerting.h.context.monitoring.latest
        await latest.put(snapshot("web-1", alerting.clock.now, fs("/", 99)))
        await evaluate_by_job(alerting, notify_jobs=0)  # pending: the default rule waits 300 s
        alerting.clock.advance(300)
        result = await evaluate_by_job(alerting, notify_jobs=1)
        assert result["notifications"] == 2
        [shown] = await alerting.alerts(state="firing")
        by_format = {
            n["target"]["format"]: n for n in (await detail(alerting, shown["id"]))["notifications"]
        }
        refused = by_format["json"]
        # A 4xx other than 408/425/429 is final: the receiver will not take this payload.
        assert refused["status"] == "failed"
        assert [a["status_code"] for a in refused["attempts"]] == [400]
        assert refusing.answered == [400]
        unreachable = by_format["slack"]
        assert unreachable["status"] == "failed"
        assert [a["attempt"] for a in unreachable["attempts"]] == [1, 2, 3]
        assert all(a["status_code"] is None for a in unreachable["attempts"])
        assert all(a["error"].startswith("ConnectError") for a in unreachable["attempts"])
        assert unreachable["last_error"].startswith("ConnectError")
        metrics = await alerting.h.client.get("/metrics", headers=alerting.viewer)
        assert 'tend_alert_notifications{status="failed"} 2.0' in metrics.text


async def test_a_malformed_global_webhook_stops_the_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, alert_webhooks=[{"url": "ftp://example.com/x"}])
    database = Database.from_settings(settings)
    try:
        with pytest.raises(ValidationError, match="url"):
            AlertService(database, settings)
    finally:
        await database.dispose()
