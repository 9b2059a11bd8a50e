"""Alert states through the real service and API on both backends, with a controllable clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tend.monitoring.registry import Sample
from tests.monitoring.alert_support import Alerting, alerting, fs, snapshot, started

__all__ = ["alerting"]

DEFAULTS = {
    "filesystem-full",
    "filesystem-inodes-full",
    "memory-low",
    "load-high",
    "host-unreachable",
    "systemd-failed-units",
}


async def test_a_new_database_ships_the_default_rules(alerting: Alerting) -> None:
    response = await alerting.h.client.get("/api/v1/alerts/rules", headers=alerting.viewer)
    assert response.status_code == 200
    rules = {r["name"]: r for r in response.json()}
    assert set(rules) == DEFAULTS
    assert (rules["filesystem-full"]["metric"], rules["filesystem-full"]["threshold"]) == (
        "filesystem_used_percent",
        90.0,
    )
    assert rules["memory-low"]["comparison"] == "<"
    assert rules["memory-low"]["threshold"] == 5.0
    assert rules["load-high"]["threshold"] is None
    assert rules["load-high"]["threshold_per_cpu"] == 2.0
    assert (rules["host-unreachable"]["metric"], rules["host-unreachable"]["comparison"]) == (
        "host_up",
        "==",
    )
    assert rules["systemd-failed-units"]["threshold"] == 0.0
    assert all(r["enabled"] for r in rules.values())


async def test_filesystem_alert_goes_pending_firing_resolved_with_history(
    alerting: Alerting,
) -> None:
    await alerting.add_host("web-1", "web")
    clock = alerting.clock
    start = clock.now
    await alerting.put(snapshot("web-1", clock.now, fs("/", 95.5), fs("/home", 40)))
    result = await alerting.evaluate()
    assert (result.started, result.fired) == (1, 0)
    [pending] = await alerting.alerts()
    assert pending["state"] == "pending"
    assert (pending["rule"], pending["host"], pending["labels"]) == (
        "filesystem-full",
        "web-1",
        {"mount": "/"},
    )
    assert (pending["value"], pending["threshold"], pending["severity"]) == (95.5, 90.0, "warning")

    clock.advance(299)
    await alerting.put(snapshot("web-1", clock.now, fs("/", 96.0), fs("/home", 40)))
    await alerting.evaluate()
    assert [a["state"] for a in await alerting.alerts()] == ["pending"]

    fired_at = clock.advance(1)
    result = await alerting.evaluate()
    assert result.fired == 1
    [firing] = await alerting.alerts(state="firing")
    assert firing["id"] == pending["id"]
    assert firing["value_started"] == 95.5
    assert firing["value_fired"] == 96.0
    assert firing["fired_at"].startswith(fired_at.isoformat()[:19])

    resolved_at = clock.advance(120)
    await alerting.put(snapshot("web-1", clock.now, fs("/", 70.0), fs("/home", 40)))
    result = await alerting.evaluate()
    assert result.resolved == 1
    assert await alerting.alerts() == []
    [resolved] = await alerting.alerts(state="resolved")
    assert resolved["id"] == pending["id"]
    assert resolved["value_resolved"] == 70.0
    assert resolved["started_at"].startswith(start.isoformat()[:19])
    assert resolved["resolved_at"].startswith(resolved_at.isoformat()[:19])

    # The condition comes back: a new episode, the old one stays in the history.
    clock.advance(60)
    await alerting.put(snapshot("web-1", clock.now, fs("/", 99.0)))
    await alerting.evaluate()
    history = await alerting.h.client.get(
        "/api/v1/alerts/history", params={"host": "web-1"}, headers=alerting.viewer
    )
    assert [(a["state"], a["value"]) for a in history.json()] == [
        ("pending", 99.0),
        ("resolved", 70.0),
    ]


async def test_a_pending_alert_that_clears_leaves_no_trace(alerting: Alerting) -> None:
    await alerting.add_host("web-1")
    await alerting.put(snapshot("web-1", alerting.clock.now, fs("/", 95)))
    await alerting.evaluate()
    alerting.clock.advance(30)
    await alerting.put(snapshot("web-1", alerting.clock.now, fs("/", 50)))
    await alerting.evaluate()
    history = await alerting.h.client.get("/api/v1/alerts/history", headers=alerting.viewer)
    assert history.json() == []


async def test_load_relative_to_cores_and_an_unreachable_host(alerting: Alerting) -> None:
    await alerting.add_host("web-1")
    await alerting.add_host("db-1", "db")
    clock = alerting.clock

    def web(load: float) -> Any:
        return snapshot("web-1", clock.now, Sample.of("cpu_count", 2), Sample.of("load15", load))

    def db_ok(used: float) -> Any:
        return snapshot(
            "db-1", clock.now, Sample.of("cpu_count", 16), Sample.of("load15", 5), fs("/", used)
        )

    await alerting.put(web(5.0), db_ok(97))  # web: 5 > 2 x 2; db: 5 < 2 x 16
    await alerting.evaluate()
    states = {(a["rule"], a["host"]): a for a in await alerting.alerts()}
    assert set(states) == {("load-high", "web-1"), ("filesystem-full", "db-1")}
    assert states[("load-high", "web-1")]["threshold"] == 4.0

    clock.advance(300)
    await alerting.put(db_ok(97))
    await alerting.evaluate()
    clock.advance(10)
    await alerting.put(snapshot("db-1", clock.now, error="ssh: connection refused"))
    await alerting.evaluate()
    by_key = {(a["rule"], a["host"]): a["state"] for a in await alerting.alerts()}
    assert by_key == {
        ("load-high", "web-1"): "pending",
        ("filesystem-full", "db-1"): "firing",  # no data: the fs alert keeps its state
        ("host-unreachable", "db-1"): "pending",
    }
    clock.advance(60)
    await alerting.evaluate()
    by_key = {(a["rule"], a["host"]): a["state"] for a in await alerting.alerts()}
    assert by_key[("host-unreachable", "db-1")] == "firing"
    assert by_key[("filesystem-full", "db-1")] == "firing"

    clock.advance(230)  # load has held 600 s now
    await alerting.put(web(5.0), db_ok(50))
    await alerting.evaluate()
    by_key = {(a["rule"], a["host"]): a["state"] for a in await alerting.alerts()}
    assert by_key == {("load-high", "web-1"): "firing"}
    resolved = await alerting.alerts(state="resolved", host="db-1")
    assert {a["rule"] for a in resolved} == {"filesystem-full", "host-unreachable"}


async def test_rules_that_go_away_resolve_their_alerts(alerting: Alerting) -> None:
    await alerting.add_host("web-1")
    await alerting.add_host("db-1", "db")
    created = await alerting.h.client.post(
        "/api/v1/alerts/rules",
        json={
            "name": "db-zombies",
            "metric": "processes_zombie",
            "comparison": ">=",
            "threshold": 5,
            "tags": ["db"],
            "severity": "critical",
            "labels": {"team": "dba"},
        },
        headers=alerting.operator,
    )
    assert created.status_code == 201, created.text
    zombies = Sample.of("processes_zombie", 7)
    await alerting.put(
        snapshot("web-1", alerting.clock.now, zombies, fs("/", 99)),
        snapshot("db-1", alerting.clock.now, zombies),
    )
    await alerting.evaluate()
    firing = await alerting.alerts(state="firing")
    assert [(a["rule"], a["host"], a["labels"]) for a in firing] == [
        ("db-zombies", "db-1", {"team": "dba"})
    ]  # for 0 s: fires at once, and only on hosts tagged db
    assert firing[0]["severity"] == "critical"

    alerting.clock.advance(10)
    await alerting.set_rules_enabled(False, "filesystem-full")
    deleted = await alerting.h.client.delete(
        "/api/v1/alerts/rules/db-zombies", headers=alerting.operator
    )
    assert deleted.status_code == 204
    await alerting.evaluate()
    assert await alerting.alerts() == []  # the fs alert was pending: dropped
    [gone] = await alerting.alerts(state="resolved")
    assert (gone["rule"], gone["rule_id"]) == ("db-zombies", None)

    # A host removed from the inventory resolves its alerts.
    await alerting.set_rules_enabled(True, "filesystem-full")
    await alerting.put(snapshot("web-1", alerting.clock.now, fs("/", 99)))
    await alerting.evaluate()
    alerting.clock.advance(300)
    await alerting.evaluate()
    assert [a["state"] for a in await alerting.alerts(host="web-1")] == ["firing"]
    removed = await alerting.h.client.delete("/api/v1/hosts/web-1", headers=alerting.admin)
    assert removed.status_code == 204
    await alerting.evaluate()
    assert await alerting.alerts() == []


async def test_a_silenced_alert_changes_state_but_notifies_nobody(
    tmp_path: Path, database_target: dict[str, Any]
) -> None:
    hook = {"url": "http://127.0.0.1:9/hooks/T000/secret", "format": "slack"}
    async with started(tmp_path, database_target, alert_webhooks=[hook]) as alerting:
        await alerting.add_host("web-1")
        client, clock = alerting.h.client, alerting.clock
        silence = await client.post(
            "/api/v1/alerts/silences",
            json={
                "host": "web-*",
                "labels": {"mount": "/"},
                "duration": 600,
                "comment": "disk swap",
            },
            headers=alerting.operator,
        )
        assert silence.status_code == 201, silence.text
        silence_id = silence.json()["id"]
        await alerting.put(snapshot("web-1", clock.now, fs("/", 99), fs("/data", 99)))
        await alerting.evaluate()
        clock.advance(300)
        result = await alerting.evaluate()
        assert result.fired == 2
        firing = {a["labels"]["mount"]: a for a in await alerting.alerts(state="firing")}
        assert firing["/"]["silenced_by"] == [silence_id]
        assert firing["/data"]["silenced_by"] == []
        assert len(result.notifications) == 1  # only /data; / is silenced

        async def notifications(alert_id: int) -> list[dict[str, Any]]:
            detail = await client.get(f"/api/v1/alerts/{alert_id}", headers=alerting.viewer)
            assert detail.status_code == 200
            return list(detail.json()["notifications"])

        [sent] = await notifications(firing["/data"]["id"])
        assert sent["event"] == "firing"
        assert sent["target"] == {"url": "http://127.0.0.1:9/…", "format": "slack"}
        assert await notifications(firing["/"]["id"]) == []

        clock.advance(15)
        await alerting.evaluate()
        assert await notifications(firing["/"]["id"]) == []  # still silenced, still firing

        # The silence ends while the alert still fires: receivers hear about it now.
        ended = await client.delete(
            f"/api/v1/alerts/silences/{silence_id}", headers=alerting.operator
        )
        assert ended.status_code == 204
        clock.advance(15)
        result = await alerting.evaluate()
        assert len(result.notifications) == 1
        assert [n["event"] for n in await notifications(firing["/"]["id"])] == ["firing"]
        clock.advance(15)
        assert (await alerting.evaluate()).notifications == []  # told once

        clock.advance(15)
        await alerting.put(snapshot("web-1", clock.now, fs("/", 10), fs("/data", 10)))
        result = await alerting.evaluate()
        assert result.resolved == 2
        assert len(result.notifications) == 2
        assert [n["event"] for n in await notifications(firing["/"]["id"])] == [
            "firing",
            "resolved",
        ]
        listed = await client.get(
            "/api/v1/alerts/silences", params={"expired": True}, headers=alerting.viewer
        )
        assert [(s["id"], s["state"]) for s in listed.json()] == [(silence_id, "expired")]


async def test_disabling_a_rule_tells_its_own_webhooks_the_alert_resolved(
    alerting: Alerting,
) -> None:
    await alerting.add_host("web-1")
    client = alerting.h.client
    target = {"url": "http://127.0.0.1:9/team-hook", "format": "json"}
    created = await client.post(
        "/api/v1/alerts/rules",
        json={"name": "zombies", "metric": "processes_zombie", "threshold": 0, "notify": [target]},
        headers=alerting.operator,
    )
    assert created.status_code == 201
    await alerting.put(snapshot("web-1", alerting.clock.now, Sample.of("processes_zombie", 3)))
    fired = await alerting.evaluate()
    assert (fired.fired, len(fired.notifications)) == (1, 1)
    await alerting.set_rules_enabled(False, "zombies")
    alerting.clock.advance(15)
    resolved = await alerting.evaluate()
    assert (resolved.resolved, len(resolved.notifications)) == (1, 1)
    [alert] = await alerting.alerts(state="resolved")
    detail = await client.get(f"/api/v1/alerts/{alert['id']}", headers=alerting.viewer)
    sent = [(n["event"], n["target"]["url"]) for n in detail.json()["notifications"]]
    assert sent == [("firing", "http://127.0.0.1:9/…"), ("resolved", "http://127.0.0.1:9/…")]
