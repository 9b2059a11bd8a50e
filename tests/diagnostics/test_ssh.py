"""A diagnosis over SSH through a real sshd: the same analyzers, agentless, audited per host."""

from __future__ import annotations

from tests.conftest import Harness
from tests.execution.sshd import SshdFactory


async def test_diagnose_a_host_over_ssh(sshd_factory: SshdFactory, local: Harness) -> None:
    server = sshd_factory.one()
    login = await local.client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": local.admin_password}
    )
    headers = local.bearer(login.json()["access_token"])
    created = await local.client.post(
        "/api/v1/hosts",
        headers=headers,
        json={
            "name": "remote",
            "address": server.address,
            "port": server.port,
            "user": server.user,
            "key_file": str(server.client_key_path),
            "host_key": server.host_key_line,
        },
    )
    assert created.status_code == 201, created.text
    response = await local.client.post("/api/v1/hosts/remote/diagnose", headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    by_analyzer = {f["analyzer"]: f for f in report["findings"]}
    assert "connection" not in by_analyzer
    assert set(by_analyzer) >= {"disk", "memory", "load", "zombies", "listening_ports"}
    ran = {p["id"]: p for p in report["probes"]}
    assert ran["df"]["status"] == "ok"
    assert ran["ps"]["status"] == "ok"
    assert ran["vmstat"]["status"] == "ok"
    # Off the tend machine the clock is also compared with tend's own.
    clock = by_analyzer["clock"]
    assert any("host clock minus tend's clock" in line for line in clock["evidence"])
    assert "MemTotal" in by_analyzer["memory"]["evidence"][0] or any(
        "MemAvailable" in line for line in by_analyzer["memory"]["evidence"]
    )
    records = await local.context.execution.audit.query(host="remote", limit=1000)
    mine = [r for r in records if r.run_id == report["run_id"]]
    assert {r.event for r in mine} == {"run_intent", "run_result"}
    assert len(mine) == 2 * len(ran)
