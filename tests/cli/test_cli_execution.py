"""``tend run``, ``tend approvals``, ``tend policy check`` and ``tend audit list`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli
from tests.cli.test_cli import make_token


def test_policy_check_prints_json_without_running(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "never"
    result = cli("policy", "check", "--", "touch", str(marker))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["risk"] == "change"
    assert decision["command"] == "touch"
    assert decision["reason"]
    assert not marker.exists()
    forbidden = cli("policy", "check", "--", "sudo", "rm", "-rf", "/")
    assert json.loads(forbidden.stdout)["risk"] == "forbidden"
    assert json.loads(forbidden.stdout)["wrappers"] == ["sudo"]
    assert forbidden.exit_code == 0
    newline = cli("policy", "check", "--", "echo", "a\nb")
    assert newline.exit_code == 1
    assert "newline" in newline.output


def test_policy_check_uses_the_rules_file(cli: Cli, tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: db-read-only\n    match: {tags: [db]}\n    read_only: true\n"
        "  - id: nginx\n    allow: [[systemctl, restart, nginx]]\n"
    )
    cli.env["TEND_POLICY_FILE"] = str(rules)
    on_db = json.loads(cli("policy", "check", "-t", "db", "--", "touch", "/x").stdout)
    assert on_db["risk"] == "forbidden"
    assert on_db["rule"] == "db-read-only"
    allowed = json.loads(cli("policy", "check", "--", "systemctl", "restart", "nginx").stdout)
    assert allowed["risk"] == "read"
    rules.write_text("rules: [{bogus: 1}]\n")
    broken = cli("policy", "check", "--", "ls")
    assert broken.exit_code == 1
    assert broken.output.startswith("error:")
    serve = cli("serve", "--port", "1")
    assert serve.exit_code == 1
    assert serve.output.startswith("error: policy file:")


def test_run_streams_a_read_and_shows_a_table(cli: Cli, server: str) -> None:
    token = make_token(cli)
    result = cli("run", "-H", "local", "--", "echo", "hello from tend", token=token)
    assert result.exit_code == 0, result.output
    assert "local" in result.stdout
    assert "hello from tend" in result.stdout
    as_json = cli("run", "--all", "--json", "--", "echo", "x y", token=token)
    assert as_json.exit_code == 0, as_json.output
    [row] = json.loads(as_json.stdout)
    assert row["stdout"] == "x y\n"
    failing = cli("run", "-t", "local", "--", "ls", "/definitely/not/here", token=token)
    assert failing.exit_code == 1
    assert "1 of 1 host(s) failed" in failing.output
    no_hosts = cli("run", "--", "uptime", token=token)
    assert no_hosts.exit_code == 2
    unknown = cli("run", "-H", "ghost", "--", "uptime", token=token)
    assert unknown.exit_code == 1
    assert "404 NotFound" in unknown.output
    refused = cli("run", "-H", "local", "--", "rm", "-rf", "/", token=token)
    assert refused.exit_code == 1
    assert "403 PolicyRefused" in refused.output


def test_change_through_approvals(cli: Cli, server: str, tmp_path: Path) -> None:
    token = make_token(cli)
    marker = tmp_path / "approved"
    pending = cli("run", "-H", "local", "--reason", "demo", "--", "touch", str(marker), token=token)
    assert pending.exit_code == 3, pending.output
    approval_id = pending.stdout.strip().splitlines()[-1]
    assert "approval required" in pending.output
    assert not marker.exists()
    listed = cli("approvals", "list", "--json", token=token)
    assert [a["id"] for a in json.loads(listed.stdout)] == [approval_id]
    assert approval_id[:8] in cli("approvals", "list", token=token).stdout
    approved = cli("approvals", "approve", approval_id, "--note", "ok", token=token)
    assert approved.exit_code == 0, approved.output
    assert marker.exists()
    again = cli("approvals", "approve", approval_id, token=token)
    assert again.exit_code == 1
    assert "409 Conflict" in again.output
    second = cli("run", "-H", "local", "--", "touch", str(tmp_path / "other"), token=token)
    other_id = second.stdout.strip().splitlines()[-1]
    denied = cli("approvals", "deny", other_id, token=token)
    assert denied.exit_code == 0
    assert not (tmp_path / "other").exists()
    history = cli("approvals", "list", "--status", "all", "--json", token=token)
    assert {a["status"] for a in json.loads(history.stdout)} == {"executed", "denied"}
    audit = cli("audit", "list", "--host", "local", "--json", token=token)
    events = [r["event"] for r in json.loads(audit.stdout)]
    assert "run_intent" in events
    assert "run_result" in events
    assert "touch" in cli("audit", "list", token=token).stdout


def test_background_run_and_jobs_commands(cli: Cli, server: str) -> None:
    token = make_token(cli)
    queued = cli("run", "-H", "local", "--async", "--", "echo", "later", token=token)
    assert queued.exit_code == 0, queued.output
    job_id = queued.stdout.strip().splitlines()[-1]
    assert "tend jobs watch" in queued.output
    watched = cli("jobs", "watch", job_id, token=token)
    assert watched.exit_code == 0, watched.output
    assert f"job {job_id} succeeded" in watched.stdout
    assert "later" in watched.stdout
    listed = json.loads(cli("jobs", "list", "--json", token=token).stdout)
    assert job_id in [j["id"] for j in listed]
    assert job_id[:8] in cli("jobs", "list", "--kind", "run", token=token).stdout
    shown = cli("jobs", "show", job_id, token=token)
    assert shown.exit_code == 0
    assert "later" in shown.stdout  # the per-host results table
    detail = json.loads(cli("jobs", "show", job_id, "--json", token=token).stdout)
    assert (detail["kind"], detail["state"]) == ("run", "succeeded")
    late = cli("jobs", "cancel", job_id, token=token)
    assert late.exit_code == 1
    assert "409 Conflict" in late.output
    change = cli("run", "-H", "local", "--async", "--", "touch", "/tmp/x", token=token)
    assert change.exit_code == 3
    missing = cli("jobs", "watch", "nope", token=token)
    assert missing.exit_code == 1
    assert "404 NotFound" in missing.output
