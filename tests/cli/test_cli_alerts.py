"""``tend alerts`` against a live server: list, silence, rules, history."""

from __future__ import annotations

import json

import httpx
import pytest

from tend.cli.alerts import parse_duration
from tests.cli.conftest import Cli
from tests.cli.test_cli import make_token


def post_alertmanager_alert(server: str, token: str, status: str = "firing") -> None:
    body = {
        "version": "4",
        "status": status,
        "receiver": "tend",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "NodeDiskFull", "instance": "web-1:9100"},
                "annotations": {"summary": "disk almost full"},
                "startsAt": "2026-03-01T11:50:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "feedface",
            }
        ],
    }
    response = httpx.post(
        f"{server}/api/v1/alerts/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_rules_list_and_enable_disable(cli: Cli, server: str) -> None:
    token = make_token(cli)
    shown = cli("alerts", "rules", token=token)
    assert shown.exit_code == 0, shown.output
    assert "filesystem-full" in shown.stdout
    assert "load15 > 2 x cpus" in shown.stdout
    assert "host_up == 0" in shown.stdout
    disabled = cli("alerts", "disable", "memory-low", token=token)
    assert disabled.exit_code == 0, disabled.output
    rules = {r["name"]: r for r in json.loads(cli("alerts", "rules", "--json", token=token).stdout)}
    assert rules["memory-low"]["enabled"] is False
    assert rules["filesystem-full"]["enabled"] is True
    assert cli("alerts", "enable", "memory-low", token=token).exit_code == 0
    missing = cli("alerts", "disable", "no-such-rule", token=token)
    assert missing.exit_code == 1
    assert "404 NotFound" in missing.output


def test_list_silence_and_unsilence(cli: Cli, server: str) -> None:
    cli.env["COLUMNS"] = "160"  # the alert table is wide
    token = make_token(cli)
    post_alertmanager_alert(server, token)
    firing = json.loads(cli("alerts", "list", "--state", "firing", "--json", token=token).stdout)
    [alert] = [a for a in firing if a["source"] == "alertmanager"]
    assert (alert["rule"], alert["host"], alert["silenced_by"]) == ("NodeDiskFull", "web-1", [])
    table = cli("alerts", "list", "--host", "web-1", token=token)
    assert table.exit_code == 0, table.output
    assert "NodeDiskFull" in table.stdout
    assert "web-1:9100" in table.stdout

    made = cli("alerts", "silence", "-H", "web-*", "-d", "1h30m", "-c", "disk swap", token=token)
    assert made.exit_code == 0, made.output
    silence_id = int(made.stdout.strip().splitlines()[-1])
    assert "silenced until" in made.stdout
    table = cli("alerts", "list", "--state", "firing", token=token)
    assert f"#{silence_id}" in table.stdout
    listed = json.loads(cli("alerts", "silences", "--json", token=token).stdout)
    assert [(s["id"], s["host"], s["comment"]) for s in listed] == [
        (silence_id, "web-*", "disk swap")
    ]
    assert "disk swap" in cli("alerts", "silences", token=token).stdout

    shown = cli("alerts", "show", str(alert["id"]), token=token)
    assert shown.exit_code == 0
    assert "NodeDiskFull" in shown.stdout

    ended = cli("alerts", "unsilence", str(silence_id), token=token)
    assert ended.exit_code == 0, ended.output
    assert json.loads(cli("alerts", "silences", "--json", token=token).stdout) == []
    expired = json.loads(cli("alerts", "silences", "--expired", "--json", token=token).stdout)
    assert [s["state"] for s in expired] == ["expired"]

    post_alertmanager_alert(server, token, status="resolved")
    history = json.loads(cli("alerts", "history", "-H", "web-1", "--json", token=token).stdout)
    assert [(a["rule"], a["state"]) for a in history] == [("NodeDiskFull", "resolved")]
    resolved = cli("alerts", "list", "--state", "resolved", "--rule", "NodeDiskFull", token=token)
    assert "resolved" in resolved.stdout


def test_bad_input_is_one_line(cli: Cli, server: str) -> None:
    token = make_token(cli)
    no_matcher = cli("alerts", "silence", "-d", "1h", "-c", "x", token=token)
    assert no_matcher.exit_code == 2
    assert "at least one of --host, --rule or --label" in no_matcher.output
    bad_duration = cli("alerts", "silence", "-H", "a", "-d", "soon", "-c", "x", token=token)
    assert bad_duration.exit_code == 2
    assert "not a duration" in bad_duration.output
    bad_label = cli("alerts", "silence", "-l", "mount", "-d", "1h", "-c", "x", token=token)
    assert bad_label.exit_code == 2
    assert "NAME=GLOB" in bad_label.output
    bad_state = cli("alerts", "list", "--state", "burning", token=token)
    assert bad_state.exit_code == 1
    assert bad_state.output.startswith("error: 422")
    no_token = cli("alerts", "list")
    assert no_token.exit_code == 1
    assert "TEND_TOKEN" in no_token.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
