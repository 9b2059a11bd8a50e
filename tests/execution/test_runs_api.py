"""The one execution path over HTTP, on the local transport: policy, approvals, audit."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from tend.auth.models import Role
from tend.db import utcnow
from tend.execution.models import Approval
from tests.conftest import Harness

RUNS = "/api/v1/runs"


async def run(h: Harness, headers: dict[str, str], argv: list[str], targets=("local",), **extra):
    body = {"argv": argv, "targets": list(targets), **extra}
    return await h.client.post(RUNS, json=body, headers=headers)


async def audit(h: Harness, headers: dict[str, str], **params) -> list[dict]:
    response = await h.client.get("/api/v1/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_read_runs_at_once_and_is_audited(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await run(harness, operator, ["echo", "hello world", "$(id)"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["risk"] == "read"
    assert body["ok"] is True
    [result] = body["results"]
    assert result["host"] == "local"
    assert result["stdout"] == "hello world $(id)\n"  # no shell: arguments arrive literally
    records = await audit(harness, operator, host="local")
    events = [r["event"] for r in records]
    assert events[:2] == ["run_result", "run_intent"]
    done = records[0]
    assert done["exit_code"] == 0
    assert done["stdout_bytes"] == len(result["stdout"])
    assert done["stdout_sha256"] == hashlib.sha256(result["stdout"].encode()).hexdigest()
    assert done["run_id"] == body["run_id"] == records[1]["run_id"]


async def test_viewer_may_read_but_not_request_changes(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    assert (await run(harness, viewer, ["uptime"])).status_code == 200
    refused = await run(harness, viewer, ["touch", "/tmp/x"])
    assert refused.status_code == 403
    assert "viewers cannot request changes" in refused.json()["detail"]
    admin = await harness.role_headers(Role.ADMIN)
    [record] = await audit(harness, admin, event="refused")
    assert record["argv"] == ["touch", "/tmp/x"]
    assert record["risk"] == "change"


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "-rf", "/"],
        ["sh", "-c", "rm -rf / --no-preserve-root"],
        ["sudo", "dd", "if=/dev/zero", "of=/dev/sda"],
        ["/usr/bin/../bin/rm", "-r", "/etc"],
    ],
)
async def test_forbidden_is_refused_with_the_reason_and_audited(harness: Harness, argv) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    response = await run(harness, admin, argv, reason="please")
    assert response.status_code == 403
    assert response.json()["error"] == "PolicyRefused"
    assert response.json()["detail"]["risk"] == "forbidden"
    assert response.json()["detail"]["reason"]
    [record] = await audit(harness, admin, risk="forbidden")
    assert record["event"] == "refused"
    assert record["argv"] == argv


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        ([], "argv"),
        ([""], "argv"),
        (["echo", "a\nb"], "argv"),
        (["echo", "a\x00b"], "argv"),
        (["echo", "x" * (65 * 1024)], "argv"),
        ("uptime", "argv"),
    ],
)
async def test_bad_argv_is_422(harness: Harness, argv, where: str) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await run(harness, operator, argv)
    assert response.status_code == 422
    assert any(where in item["loc"] for item in response.json()["detail"])


async def test_bad_targets(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    assert (await run(harness, operator, ["uptime"], targets=["ghost"])).status_code == 404
    assert (await run(harness, operator, ["uptime"], targets=["tag:nope"])).status_code == 404
    assert (await run(harness, operator, ["uptime"], targets=[])).status_code == 422
    assert (await run(harness, operator, ["uptime"], targets=["Bad Name"])).status_code == 422
    bad_timeout = await run(harness, operator, ["uptime"], timeout=0)
    assert bad_timeout.status_code == 422


async def test_change_waits_for_approval_and_runs_exactly_once(
    harness: Harness, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    operator = await harness.role_headers(Role.OPERATOR)
    argv = ["sh", "-c", f"echo ran >> {marker}"]
    pending = await run(harness, operator, argv, reason="test the approval flow")
    assert pending.status_code == 202, pending.text
    approval_id = pending.json()["approval_id"]
    assert pending.json()["hosts"] == ["local"]
    assert not marker.exists(), "nothing runs before approval"
    listed = await harness.client.get(
        "/api/v1/approvals", params={"status": "pending"}, headers=operator
    )
    assert [a["id"] for a in listed.json()] == [approval_id]
    assert listed.json()[0]["reason"] == "test the approval flow"
    approver = await harness.role_headers(Role.OPERATOR)
    first, second = await asyncio.gather(
        harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=approver),
        harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=operator),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409]
    winner = first if first.status_code == 200 else second
    assert winner.json()["run"]["ok"] is True
    assert winner.json()["approval"]["status"] == "executed"
    assert marker.read_text() == "ran\n", "approved argv ran exactly once"
    again = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=approver)
    assert again.status_code == 409
    admin = await harness.role_headers(Role.ADMIN)
    events = [r["event"] for r in await audit(harness, admin)]
    assert events[:4] == ["run_result", "run_intent", "approval_granted", "approval_requested"]


async def test_four_eyes_on_prod_hosts(harness: Harness, tmp_path: Path) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    tagged = await harness.client.patch(
        "/api/v1/hosts/local", json={"tags": ["local", "prod"]}, headers=admin
    )
    assert tagged.status_code == 200
    requester = await harness.user(Role.OPERATOR)
    mine = harness.jwt(requester)
    pending = await run(harness, mine, ["touch", str(tmp_path / "f")])
    assert pending.status_code == 202
    assert pending.json()["four_eyes"] is True
    approval_id = pending.json()["approval_id"]
    own = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=mine)
    assert own.status_code == 403
    assert "four-eyes" in own.json()["detail"]
    viewer = await harness.role_headers(Role.VIEWER)
    assert (
        await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=viewer)
    ).status_code == 403
    other = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=admin)
    assert other.status_code == 200
    assert (tmp_path / "f").exists()


async def test_self_approval_allowed_without_four_eyes(harness: Harness, tmp_path: Path) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    pending = await run(harness, operator, ["touch", str(tmp_path / "g")])
    assert pending.json()["four_eyes"] is False
    approval_id = pending.json()["approval_id"]
    done = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=operator)
    assert done.status_code == 200


async def test_expired_approvals_never_run(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "late"
    operator = await harness.role_headers(Role.OPERATOR)
    pending = await run(harness, operator, ["touch", str(marker)])
    approval_id = pending.json()["approval_id"]
    async with harness.context.database.session() as session:
        await session.execute(
            update(Approval)
            .where(Approval.id == approval_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    late = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=operator)
    assert late.status_code == 409
    assert "expired" in late.json()["detail"]
    assert not marker.exists()
    shown = await harness.client.get(f"/api/v1/approvals/{approval_id}", headers=operator)
    assert shown.json()["status"] == "expired"
    admin = await harness.role_headers(Role.ADMIN)
    [record] = await audit(harness, admin, event="approval_expired")
    assert record["approval_id"] == approval_id


async def test_deny(harness: Harness, tmp_path: Path) -> None:
    marker = tmp_path / "denied"
    operator = await harness.role_headers(Role.OPERATOR)
    pending = await run(harness, operator, ["touch", str(marker)])
    approval_id = pending.json()["approval_id"]
    denied = await harness.client.post(
        f"/api/v1/approvals/{approval_id}/deny", json={"note": "not now"}, headers=operator
    )
    assert denied.status_code == 200
    assert denied.json()["approval"]["status"] == "denied"
    assert denied.json()["approval"]["decision_note"] == "not now"
    assert not marker.exists()
    late = await harness.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=operator)
    assert late.status_code == 409
    missing = await harness.client.post("/api/v1/approvals/nope/deny", headers=operator)
    assert missing.status_code == 404


async def test_timeout_kills_the_command(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    done = await run(harness, operator, ["sleep", "30"], timeout=1)
    assert done.status_code == 200
    assert done.json()["ok"] is False
    [result] = done.json()["results"]
    assert result["status"] == "timeout"
    assert result["duration"] < 10


async def test_policy_check_endpoint(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    cases = {
        ("systemctl", "status", "nginx"): "read",
        ("systemctl", "restart", "nginx"): "change",
        ("bash", "-c", "rm -rf /"): "forbidden",
        ("some-unknown-tool",): "change",
    }
    for argv, risk in cases.items():
        response = await harness.client.post(
            "/api/v1/policy/check", json={"argv": list(argv), "host": "local"}, headers=viewer
        )
        assert response.status_code == 200
        assert response.json()["risk"] == risk, argv
        assert response.json()["host"] == "local"
    unknown = await harness.client.post(
        "/api/v1/policy/check", json={"argv": ["ls"], "host": "ghost"}, headers=viewer
    )
    assert unknown.status_code == 404


async def test_streamed_run(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await harness.client.post(
        f"{RUNS}/stream", json={"argv": ["echo", "hi"], "targets": ["all"]}, headers=operator
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in response.text.splitlines()]
    assert [e["event"] for e in events] == ["start", "host", "done"]
    assert events[1]["data"]["stdout"] == "hi\n"
    assert events[2]["data"]["ok"] is True
    change = await harness.client.post(
        f"{RUNS}/stream", json={"argv": ["reboot"], "targets": ["all"]}, headers=operator
    )
    assert change.status_code == 202


async def test_audit_filters(harness: Harness) -> None:
    operator = await harness.user(Role.OPERATOR, name="opal")
    headers = harness.jwt(operator)
    await run(harness, headers, ["uptime"])
    admin = await harness.role_headers(Role.ADMIN)
    assert {r["actor"] for r in await audit(harness, admin, user="opal")} == {"opal"}
    assert await audit(harness, admin, user="nobody") == []
    assert all(r["risk"] == "read" for r in await audit(harness, admin, risk="read"))
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert await audit(harness, admin, since=future) == []
    bad = await harness.client.get(
        "/api/v1/audit",
        params={"since": future, "until": utcnow().isoformat()},
        headers=admin,
    )
    assert bad.status_code == 422
    viewer = await harness.role_headers(Role.VIEWER)
    assert (await harness.client.get("/api/v1/audit", headers=viewer)).status_code == 403


async def test_tend_protects_its_own_data_on_the_local_host(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    data_dir = harness.context.settings.data_dir.resolve()
    for argv in (
        ["cat", f"{data_dir}/secret_key"],
        ["sh", "-c", f"echo x > {data_dir}/policy.yaml"],
        ["sqlite3", f"{data_dir}/tend.db", "DELETE FROM audit_log"],
        ["ls", str(data_dir)],
        ["du", f"--files0-from={data_dir}/x"],
        ["sh", "-c", f"cat {data_dir};"],
    ):
        response = await run(harness, admin, argv)
        assert response.status_code == 403, argv
        assert response.json()["detail"]["reason"].startswith("the command names")
    # A sibling of the data dir is another directory, not tend's.
    sibling = await run(harness, admin, ["ls", "-d", f"{data_dir}-old", f"{data_dir}.bak"])
    assert sibling.status_code == 200, sibling.text
