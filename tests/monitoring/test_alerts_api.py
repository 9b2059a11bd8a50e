"""The alerting API on both backends: rules, silences, history filters, Alertmanager's webhook."""

from __future__ import annotations

from typing import Any

from tend.auth.models import Role
from tend.monitoring.registry import METRICS
from tests.monitoring.alert_support import Alerting, alerting, fs, snapshot

__all__ = ["alerting"]

RULES = "/api/v1/alerts/rules"
SILENCES = "/api/v1/alerts/silences"
AM = "/api/v1/alerts/alertmanager"


def rule_body(**fields: Any) -> dict[str, Any]:
    return {"name": "root-full", "metric": "filesystem_used_percent", "threshold": 80, **fields}


async def test_rule_crud(alerting: Alerting) -> None:
    client, op = alerting.h.client, alerting.operator
    body = rule_body(
        match_labels={"mount": "/"},
        for_seconds=120,
        severity="critical",
        hosts=["web-*"],
        notify=[{"url": "https://hooks.slack.com/services/T1/B2/secret", "format": "slack"}],
    )
    created = await client.post(RULES, json=body, headers=op)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["comparison"], rule["for_seconds"], rule["hosts"]) == (">", 120.0, ["web-*"])
    # Webhook paths carry secrets: they are never shown back.
    assert rule["notify"] == [{"url": "https://hooks.slack.com/…", "format": "slack"}]
    assert "secret" not in created.text

    again = await client.post(RULES, json=body, headers=op)
    assert again.status_code == 409

    switched = await client.patch(
        f"{RULES}/root-full", json={"threshold_per_cpu": 1.5, "enabled": False}, headers=op
    )
    assert switched.status_code == 200, switched.text
    assert (switched.json()["threshold"], switched.json()["threshold_per_cpu"]) == (None, 1.5)
    assert switched.json()["enabled"] is False
    assert switched.json()["notify"] == rule["notify"]  # untouched when not given

    renamed = await client.patch(
        f"{RULES}/root-full", json={"name": "root-nearly-full", "threshold": 85}, headers=op
    )
    assert renamed.json()["name"] == "root-nearly-full"
    assert (renamed.json()["threshold"], renamed.json()["threshold_per_cpu"]) == (85.0, None)
    assert (await client.get(f"{RULES}/root-full", headers=alerting.viewer)).status_code == 404
    shown = await client.get(f"{RULES}/root-nearly-full", headers=alerting.viewer)
    assert shown.json()["id"] == rule["id"]
    disabled = await client.get(RULES, params={"enabled": False}, headers=alerting.viewer)
    assert [r["name"] for r in disabled.json()] == ["root-nearly-full"]

    assert (await client.delete(f"{RULES}/root-nearly-full", headers=op)).status_code == 204
    assert (await client.delete(f"{RULES}/root-nearly-full", headers=op)).status_code == 404


async def test_bad_rules_are_refused_with_reasons(alerting: Alerting) -> None:
    client, op = alerting.h.client, alerting.operator
    unknown = await client.post(RULES, json=rule_body(metric="disk_full"), headers=op)
    assert unknown.status_code == 422
    detail = unknown.json()["detail"]
    assert "disk_full" in detail
    assert all(name in detail for name in METRICS)

    cases = [
        (rule_body(match_labels={"device": "sda"}), "no label(s) device"),
        (rule_body(threshold_per_cpu=2), "exactly one"),
        (rule_body(threshold=None), "exactly one"),
        (rule_body(comparison="=>"), "comparison"),
        (rule_body(severity="page"), "severity"),
        (rule_body(name="has space"), "name"),
        (rule_body(for_seconds=-1), "for_seconds"),
        (rule_body(notify=[{"url": "ftp://example.com/x"}]), "notify"),
        (rule_body(labels={"bad-name": "x"}), "labels"),
        (rule_body(unexpected=True), "unexpected"),
    ]
    for body, reason in cases:
        response = await client.post(RULES, json=body, headers=op)
        assert response.status_code == 422, body
        assert reason in response.text, (reason, response.text)
    created = await client.post(RULES, json=rule_body(), headers=op)
    assert created.status_code == 201
    both = await client.patch(
        f"{RULES}/root-full", json={"threshold": 1, "threshold_per_cpu": 1}, headers=op
    )
    assert both.status_code == 422
    bad_metric = await client.patch(f"{RULES}/root-full", json={"metric": "nope"}, headers=op)
    assert bad_metric.status_code == 422
    assert "valid metrics" in bad_metric.json()["detail"]
    assert (await client.get(f"{RULES}/root-full", headers=op)).json()["metric"] == (
        "filesystem_used_percent"
    )


async def test_viewers_read_and_operators_write(alerting: Alerting) -> None:
    client, viewer = alerting.h.client, alerting.viewer
    assert (await client.post(RULES, json=rule_body(), headers=viewer)).status_code == 403
    assert (await client.delete(f"{RULES}/memory-low", headers=viewer)).status_code == 403
    silence = {"host": "web-1", "duration": 60, "comment": "x"}
    assert (await client.post(SILENCES, json=silence, headers=viewer)).status_code == 403
    assert (await client.get(RULES)).status_code == 401
    assert (await client.get("/api/v1/alerts", headers=viewer)).status_code == 200
    assert (await client.get(SILENCES, headers=viewer)).status_code == 200
    made = await client.post(SILENCES, json=silence, headers=alerting.admin)
    assert made.status_code == 201


async def test_silence_crud_and_validation(alerting: Alerting) -> None:
    client, op = alerting.h.client, alerting.operator
    refused = [
        ({"duration": 60, "comment": "x"}, "at least one matcher"),
        ({"host": "a", "comment": "x"}, "exactly one of ends_at and duration"),
        ({"host": "a", "duration": 60, "ends_at": "2030-01-01T00:00:00Z", "comment": "x"}, "one"),
        ({"host": "a", "duration": 60}, "comment"),
        ({"host": "a", "duration": 60, "comment": ""}, "comment"),
        ({"host": "a", "ends_at": "2020-01-01T00:00:00Z", "comment": "x"}, "future"),
        ({"host": "a", "ends_at": "2030-01-01T00:00:00", "comment": "x"}, "time zone"),
        ({"host": "a", "duration": 400 * 86400, "comment": "x"}, "duration"),
    ]
    for body, reason in refused:
        response = await client.post(SILENCES, json=body, headers=op)
        assert response.status_code == 422, body
        assert reason in response.text, (reason, response.text)

    made = await client.post(
        SILENCES,
        json={"rule": "filesystem-*", "duration": 3600, "comment": "resizing disks"},
        headers=op,
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["state"] == "active"
    assert silence["created_by"].startswith("operator")
    assert silence["ends_at"].startswith("2026-03-01T13:00:00")
    later = await client.post(
        SILENCES,
        json={
            "host": "db-1",
            "starts_at": "2026-03-02T00:00:00Z",
            "ends_at": "2026-03-02T04:00:00Z",
            "comment": "maintenance window",
        },
        headers=op,
    )
    assert later.json()["state"] == "pending"

    extended = await client.patch(
        f"{SILENCES}/{silence['id']}", json={"duration": 7200, "comment": "slow"}, headers=op
    )
    assert extended.status_code == 200
    assert extended.json()["ends_at"].startswith("2026-03-01T14:00:00")
    assert extended.json()["comment"] == "slow"
    assert (await client.get(f"{SILENCES}/999", headers=op)).status_code == 404

    alerting.clock.advance(60)
    assert (await client.delete(f"{SILENCES}/{silence['id']}", headers=op)).status_code == 204
    assert (await client.delete(f"{SILENCES}/{later.json()['id']}", headers=op)).status_code == 204
    current = await client.get(SILENCES, headers=alerting.viewer)
    assert current.json() == []
    everything = await client.get(SILENCES, params={"expired": True}, headers=alerting.viewer)
    # The active one is kept as expired; the one that never started is gone.
    assert [(s["id"], s["state"]) for s in everything.json()] == [(silence["id"], "expired")]


async def test_history_filters(alerting: Alerting) -> None:
    await alerting.add_host("web-1")
    await alerting.add_host("db-1")
    await alerting.put(
        snapshot("web-1", alerting.clock.now, fs("/", 99)),
        snapshot("db-1", alerting.clock.now, fs("/", 99)),
    )
    await alerting.evaluate()
    client, viewer = alerting.h.client, alerting.viewer
    everything = await client.get("/api/v1/alerts/history", headers=viewer)
    assert {a["host"] for a in everything.json()} == {"web-1", "db-1"}
    only_db = await client.get("/api/v1/alerts/history", params={"host": "db-1"}, headers=viewer)
    assert [a["host"] for a in only_db.json()] == ["db-1"]
    window = {"since": "2026-03-01T11:00:00Z", "until": "2026-03-01T11:59:00Z"}
    before = await client.get("/api/v1/alerts/history", params=window, headers=viewer)
    assert before.json() == []
    backwards = {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}
    refused = await client.get("/api/v1/alerts/history", params=backwards, headers=viewer)
    assert refused.status_code == 422
    naive = await client.get(
        "/api/v1/alerts/history", params={"since": "2026-03-01T00:00:00"}, headers=viewer
    )
    assert naive.status_code == 422
    bad_state = await client.get("/api/v1/alerts", params={"state": "burning"}, headers=viewer)
    assert bad_state.status_code == 422
    assert (await client.get("/api/v1/alerts/424242", headers=viewer)).status_code == 404


def am_alert(status: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "NodeDiskFull", "instance": "web-1:9100", **labels},
        "annotations": {"summary": "disk almost full"},
        "startsAt": "2026-03-01T11:50:00.123Z",
        "endsAt": "2026-03-01T12:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": "c0ffee" + labels.get("severity", ""),
    }


def am_webhook(status: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="NodeDiskFull"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "tend",
        "groupLabels": {"alertname": "NodeDiskFull"},
        "commonLabels": {"alertname": "NodeDiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def test_alertmanager_webhook_enters_the_alert_list(alerting: Alerting) -> None:
    h = alerting.h
    operator_token = await h.api_token(await h.user(Role.OPERATOR), role=Role.OPERATOR)
    viewer_token = await h.api_token(await h.user(Role.ADMIN), role=Role.VIEWER)
    firing = am_webhook(
        "firing", am_alert("firing", severity="critical"), am_alert("firing", severity="page2")
    )
    assert (await h.client.post(AM, json=firing)).status_code == 401
    assert (await h.client.post(AM, json=firing, headers=viewer_token)).status_code == 403
    response = await h.client.post(AM, json=firing, headers=operator_token)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "firing": 2, "resolved": 0}
    again = await h.client.post(AM, json=firing, headers=operator_token)  # repeat_interval
    assert again.status_code == 200

    listed = await alerting.alerts(source="alertmanager")
    assert len(listed) == 2
    by_severity = {a["severity"]: a for a in listed}
    assert set(by_severity) == {"critical", "warning"}  # unknown severities count as warning
    crit = by_severity["critical"]
    assert (crit["rule"], crit["host"], crit["state"]) == ("NodeDiskFull", "web-1", "firing")
    assert crit["annotations"] == {"summary": "disk almost full"}
    assert crit["labels"]["instance"] == "web-1:9100"
    assert crit["started_at"].startswith("2026-03-01T11:50:00")

    # tend's own evaluation leaves Alertmanager's alerts alone.
    await alerting.add_host("web-1")
    await alerting.put(snapshot("web-1", alerting.clock.now, fs("/", 10)))
    await alerting.evaluate()
    assert len(await alerting.alerts(state="firing")) == 2

    resolved = am_webhook("resolved", am_alert("resolved", severity="critical"))
    response = await h.client.post(AM, json=resolved, headers=operator_token)
    assert response.json() == {"received": 1, "firing": 0, "resolved": 1}
    assert (await h.client.post(AM, json=resolved, headers=operator_token)).status_code == 200
    [still] = await alerting.alerts()
    assert still["severity"] == "warning"
    [done] = await alerting.alerts(state="resolved")
    assert done["id"] == crit["id"]
    assert done["resolved_at"].startswith("2026-03-01T12:05:00")

    bad = [
        {**resolved, "version": "3"},
        {**resolved, "alerts": [{"status": "firing"}]},
        {**resolved, "status": "unknown"},
        {**resolved, "alerts": [{**am_alert("firing"), "startsAt": "2026-03-01T11:50:00"}]},
    ]
    for body in bad:
        refused = await h.client.post(AM, json=body, headers=operator_token)
        assert refused.status_code == 422, body
