"""Alert investigations: a rule with ``investigate: true`` fires; diagnostics run, then the
assistant (the mock provider) as tend's read-only caller; the report reaches the alert and the
webhook that is notified."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tend.auth.models import Role
from tend.db import utcnow
from tend.settings import Settings
from tests.assistant.mock_provider import MockProvider, call, tool_calls
from tests.conftest import Harness, make_settings, start_harness
from tests.monitoring.alert_support import WebhookReceiver, fs, snapshot

SUMMARY = "/ on local is full: a runaway log filled it"


def base_settings(tmp_path: Path, **values: Any) -> Settings:
    return make_settings(
        tmp_path,
        scheduler=False,
        diagnostics_sample_seconds=1,
        diagnostics_cert_dirs=[str(tmp_path / "no-certs")],
        **values,
    )


async def fire(harness: Harness, receiver: WebhookReceiver, fmt: str = "json") -> dict[str, Any]:
    """Make an investigating rule fire on local through the evaluation job; return the rule."""
    operator = harness.jwt(await harness.user(Role.OPERATOR))
    created = await harness.client.post(
        "/api/v1/alerts/rules",
        json={
            "name": "root-full",
            "metric": "filesystem_used_percent",
            "match_labels": {"mount": "/"},
            "threshold": 90,
            "severity": "critical",
            "hosts": ["local"],
            "notify": [{"url": receiver.url, "format": fmt}],
            "investigate": True,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    await harness.context.monitoring.latest.put(snapshot("local", utcnow(), fs("/", 99.0)))
    await harness.context.jobs.enqueue("alerts.evaluate", {}, requested_by="test")
    async with asyncio.timeout(90):
        await receiver.arrived.wait()
    rule: dict[str, Any] = created.json()
    return rule


async def test_a_firing_alert_is_investigated_and_notified_with_the_report(
    tmp_path: Path, database_target: dict[str, Any], mock_provider: MockProvider
) -> None:
    settings = base_settings(tmp_path, **database_target, **mock_provider.settings())
    mock_provider.script(
        tool_calls(
            call(
                "submit_report",
                summary=SUMMARY,
                findings=[
                    {"title": "/ is 99 % full", "severity": "critical", "evidence": ["99.0"]}
                ],
            )
        )
    )
    async with WebhookReceiver() as receiver, start_harness(settings) as harness:
        rule = await fire(harness, receiver)
        viewer = harness.jwt(await harness.user(Role.VIEWER))
        admin = harness.jwt(await harness.user(Role.ADMIN))
        [payload] = [r.body for r in receiver.received]
        alert_id = payload["alert"]["id"]
        found = await harness.client.get(f"/api/v1/alerts/{alert_id}/investigation", headers=viewer)
        conversation = await harness.client.get(
            f"/api/v1/conversations/{found.json()['conversation_id']}", headers=admin
        )

    assert rule["investigate"] is True
    assert payload["event"] == "firing"
    assert payload["alert"]["rule"] == "root-full"
    investigation = payload["investigation"]
    assert investigation["status"] == "completed"
    assert investigation["summary"] == SUMMARY
    assert investigation["findings"][0]["title"] == "/ is 99 % full"
    assert found.status_code == 200, found.text
    stored = found.json()
    assert stored["status"] == "completed"
    assert stored["report"]["summary"] == SUMMARY
    assert stored["diagnostics"]["host"] == "local"  # diagnostics ran first
    assert stored["finished_at"] is not None
    # The model was told about the alert and the diagnostics, as a read-only caller.
    [request] = mock_provider.requests
    prompt = request.body["messages"][-1]["content"]
    assert "This alert just fired: [FIRING] critical root-full on local" in prompt
    assert "tend's diagnostics of local found (worst first):" in prompt
    assert "You act for user tend:alerts with role viewer" in request.text
    assert conversation.status_code == 200
    assert conversation.json()["owner"] == "tend:alerts"
    assert conversation.json()["turns"][0]["status"] == "completed"


async def test_without_a_model_the_alert_carries_the_diagnostics_alone(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    async with WebhookReceiver() as receiver, start_harness(settings) as harness:
        await fire(harness, receiver, fmt="slack")
        viewer = harness.jwt(await harness.user(Role.VIEWER))
        alerts = await harness.client.get("/api/v1/alerts", headers=viewer)
        [alert] = [a for a in alerts.json() if a["rule"] == "root-full"]
        found = await harness.client.get(
            f"/api/v1/alerts/{alert['id']}/investigation", headers=viewer
        )
    [payload] = [r.body for r in receiver.received]
    headline, summary = payload["text"].split("\n", 1)
    assert headline.startswith("[FIRING] critical root-full on local")
    assert summary.startswith("diagnostics of local")  # what the disk analyzer saw
    stored = found.json()
    assert stored["status"] == "diagnostics"
    assert stored["report"] is None
    assert "TEND_LLM_MODEL" in stored["error"]
    assert stored["summary"] == summary
