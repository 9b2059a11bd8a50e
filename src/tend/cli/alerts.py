"""``tend alerts``: current alerts, history, silences and rules, over the API."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer

from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import out, print_json, print_table
from tend.settings import Settings

alerts_app = typer.Typer(help="Alerts, their silences and rules.", no_args_is_help=True)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ALERT_COLUMNS = ["id", "state", "severity", "rule", "host", "series", "value", "since", "silenced"]

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` into seconds.

    Raises:
        typer.BadParameter: For anything else, or zero.
    """
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", spec):
        seconds = float(spec)
    elif spec and _DURATION.sub("", spec) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(spec))
    else:
        msg = f"{text!r} is not a duration; use e.g. 90s, 30m, 2h, 1d or 1h30m"
        raise typer.BadParameter(msg)
    if seconds <= 0:
        msg = "the duration must be positive"
        raise typer.BadParameter(msg)
    return seconds


def _labels(pairs: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            msg = f"--label takes NAME=GLOB, got {pair!r}"
            raise CliError(msg, exit_code=2)
        labels[name] = value
    return labels


def _rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for alert in alerts:
        series = ",".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        since = alert["resolved_at"] or alert["fired_at"] or alert["started_at"]
        value = "" if alert["value"] is None else f"{alert['value']:g}"
        if alert["threshold"] is not None:
            value = f"{value} {alert['comparison'] or ''} {alert['threshold']:g}".strip()
        rows.append(
            {
                **alert,
                "series": series if alert["source"] == "rule" else alert["labels"].get("instance"),
                "value": value or None,
                "since": since[:19].replace("T", " "),
                "silenced": [f"#{s}" for s in alert["silenced_by"]] or None,
            }
        )
    return rows


@alerts_app.command("list")
def list_alerts(
    state: Annotated[
        list[str] | None,
        typer.Option(help="pending, firing or resolved (repeatable; default pending and firing)"),
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="only this host")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="only this rule")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning or critical")] = None,
    as_json: AsJson = False,
) -> None:
    """List current alerts, firing first."""
    params: dict[str, Any] = {"state": state or [], "host": host, "rule": rule}
    params["severity"] = severity
    with ApiClient.from_settings(Settings()) as api:
        alerts = api.request("GET", "/api/v1/alerts", params={k: v for k, v in params.items() if v})
    if as_json:
        print_json(alerts)
    elif not alerts:
        out.print("no alerts")
    else:
        print_table(_rows(alerts), _ALERT_COLUMNS)


@alerts_app.command("history")
def history(
    host: Annotated[str | None, typer.Option("--host", "-H", help="only this host")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="only this rule")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time with zone, e.g. ...Z")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 50,
    as_json: AsJson = False,
) -> None:
    """List alert episodes of every state, newest first."""
    params = {k: v for k, v in {"host": host, "rule": rule, "since": since}.items() if v}
    with ApiClient.from_settings(Settings()) as api:
        alerts = api.request("GET", "/api/v1/alerts/history", params={**params, "limit": limit})
    if as_json:
        print_json(alerts)
    else:
        print_table(_rows(alerts), _ALERT_COLUMNS)


@alerts_app.command("show")
def show(
    alert_id: Annotated[int, typer.Argument(help="alert id")], as_json: AsJson = False
) -> None:
    """Show one alert with its notifications and their delivery attempts."""
    with ApiClient.from_settings(Settings()) as api:
        alert = api.request("GET", f"/api/v1/alerts/{alert_id}")
    if as_json:
        print_json(alert)
        return
    print_table(_rows([alert]), _ALERT_COLUMNS)
    rows = [
        {
            "id": n["id"],
            "event": n["event"],
            "target": f"{n['target']['format']} {n['target']['url']}",
            "status": n["status"],
            "attempts": len(n["attempts"]),
            "last_error": n["last_error"],
        }
        for n in alert["notifications"]
    ]
    if rows:
        print_table(rows, ["id", "event", "target", "status", "attempts", "last_error"])


@alerts_app.command("silence")
def silence(
    duration: Annotated[str, typer.Option("--duration", "-d", help="e.g. 30m, 2h, 1d")],
    comment: Annotated[str, typer.Option("--comment", "-c", help="why (required)")],
    host: Annotated[str | None, typer.Option("--host", "-H", help="host name glob")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="rule name glob")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="NAME=GLOB (repeatable)")
    ] = None,
) -> None:
    """Silence matching alerts for a while: they keep changing state but notify nobody.

    Prints the silence id on the last line.
    """
    labels = _labels(label)
    if host is None and rule is None and not labels:
        msg = "give at least one of --host, --rule or --label"
        raise CliError(msg, exit_code=2)
    body: dict[str, Any] = {
        "host": host,
        "rule": rule,
        "labels": labels,
        "duration": parse_duration(duration),
        "comment": comment,
    }
    with ApiClient.from_settings(Settings()) as api:
        made = api.request("POST", "/api/v1/alerts/silences", json=body)
    out.print(f"silenced until {made['ends_at'][:19].replace('T', ' ')} UTC")
    sys.stdout.write(f"{made['id']}\n")


@alerts_app.command("silences")
def list_silences(
    expired: Annotated[bool, typer.Option("--expired", help="include expired ones")] = False,
    as_json: AsJson = False,
) -> None:
    """List silences, newest first."""
    with ApiClient.from_settings(Settings()) as api:
        found = api.request(
            "GET", "/api/v1/alerts/silences", params={"expired": str(expired).lower()}
        )
    if as_json:
        print_json(found)
        return
    rows = [
        {
            **s,
            "labels": [f"{k}={v}" for k, v in s["labels"].items()],
            "ends_at": s["ends_at"][:19].replace("T", " "),
        }
        for s in found
    ]
    print_table(rows, ["id", "state", "rule", "host", "labels", "ends_at", "created_by", "comment"])


@alerts_app.command("unsilence")
def unsilence(silence_id: Annotated[int, typer.Argument(help="silence id")]) -> None:
    """End a silence now."""
    with ApiClient.from_settings(Settings()) as api:
        api.request("DELETE", f"/api/v1/alerts/silences/{silence_id}")
    out.print(f"silence {silence_id} ended")


@alerts_app.command("rules")
def rules(as_json: AsJson = False) -> None:
    """List alert rules."""
    with ApiClient.from_settings(Settings()) as api:
        found = api.request("GET", "/api/v1/alerts/rules")
    if as_json:
        print_json(found)
        return
    rows = []
    for r in found:
        threshold = (
            f"{r['threshold']:g}"
            if r["threshold"] is not None
            else f"{r['threshold_per_cpu']:g} x cpus"
        )
        where = [*r["hosts"], *(f"tag:{t}" for t in r["tags"])] or ["all"]
        rows.append(
            {
                **r,
                "condition": f"{r['metric']} {r['comparison']} {threshold}",
                "for": f"{r['for_seconds']:g}s",
                "hosts": where,
            }
        )
    print_table(rows, ["name", "condition", "for", "severity", "hosts", "enabled"])


def _set_enabled(name: str, enabled: bool) -> None:
    with ApiClient.from_settings(Settings()) as api:
        api.request("PATCH", f"/api/v1/alerts/rules/{name}", json={"enabled": enabled})
    out.print(f"rule {name} {'enabled' if enabled else 'disabled'}")


@alerts_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="rule name")]) -> None:
    """Enable a rule."""
    _set_enabled(name, enabled=True)


@alerts_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="rule name")]) -> None:
    """Disable a rule; its alerts resolve at the next evaluation."""
    _set_enabled(name, enabled=False)
