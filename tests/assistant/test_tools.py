"""The assistant's tools, driven by a scripted model through the real agent and services.

Each test scripts the model's tool calls and checks what the tool returned (the ``tool_result``
event, which is also what the model was sent) and what tend did: the audit log, approvals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tend.assistant.commands import df_argv, ps_argv
from tend.auth.models import Role
from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.local import LocalCollector
from tend.monitoring.registry import Sample, Snapshot
from tend.monitoring.store import HostState
from tests.assistant.rig import AssistantRig
from tests.assistant.scripted import Call, ScriptedModel, as_dict, last_result, tool_returns

LOCAL = HostSnapshot(
    name="local",
    address="localhost",
    port=22,
    user=None,
    transport="local",
    tags=("local",),
    key_file=None,
    proxy_jump=None,
    trust_on_first_use=False,
    host_key=None,
)


async def call(rig: AssistantRig, tool: str, role: Role = Role.OPERATOR, **args: Any) -> Any:
    """Script one call of ``tool``, run the turn, return the tool's result as data."""
    outcome = await rig.ask(ScriptedModel(Call(tool, args)), role=role)
    assert outcome.done.status == "completed", outcome.events
    sent = as_dict(last_result(outcome.script.requests[-1]))
    assert outcome.result(tool) == sent  # the event shows exactly what the model was sent
    return sent


# --- inventory and monitoring ------------------------------------------------------------


async def test_list_hosts_shows_state_and_tags(rig: AssistantRig) -> None:
    listed = await call(rig, "list_hosts")
    assert listed["status"] == "success"
    assert [(h["name"], h["state"], h["tags"]) for h in listed["hosts"]] == [
        ("local", "unknown", ["local"])
    ]
    now = datetime.now(UTC)
    state = HostState("local", "unreachable", now, now, None, "connection refused", 3)
    await rig.harness.context.monitoring.store.write_round([], [state])
    [host] = (await call(rig, "list_hosts"))["hosts"]
    assert (host["state"], host["last_error"]) == ("unreachable", "connection refused")
    assert (await call(rig, "list_hosts", tag="web"))["status"] == "no_data"


async def test_latest_metrics(rig: AssistantRig) -> None:
    before = await call(rig, "latest_metrics", host="local")
    assert before["status"] == "no_data"
    snapshot = await LocalCollector().collect(LOCAL)
    await rig.harness.context.monitoring.latest.put(snapshot)
    found = await call(rig, "latest_metrics", host="local", names=["memory_", "load1"])
    assert found["status"] == "success"
    names = {m["name"] for m in found["metrics"]}
    assert "memory_total_bytes" in names
    assert "load1" in names
    assert all(n.startswith(("memory_", "load1")) for n in names)
    total = next(m for m in found["metrics"] if m["name"] == "memory_total_bytes")
    assert total["value"] == snapshot.value("memory_total_bytes")
    assert total["unit"] == "bytes"
    missing = await call(rig, "latest_metrics", host="web-9")
    assert missing["status"] == "error"
    assert "web-9" in missing["message"]


async def test_series_summary_gives_statistics_and_trend(rig: AssistantRig) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    values = [1.0, 1.5, 2.0, 4.0, 6.0, 9.0]
    snapshots = [
        Snapshot("local", now - timedelta(minutes=30 - 5 * i), [Sample.of("load1", v)])
        for i, v in enumerate(values)
    ]
    await rig.harness.context.monitoring.store.write_round(snapshots, [])
    summary = await call(rig, "series_summary", host="local", metric="load1", since_minutes=45)
    assert summary["status"] == "success"
    [stats] = summary["series"]
    assert stats["points"] == len(values)
    assert (stats["min"], stats["max"], stats["first"], stats["last"]) == (1.0, 9.0, 1.0, 9.0)
    assert abs(stats["avg"] - sum(values) / len(values)) < 1e-9
    assert stats["trend"] == "rising"
    assert "points" not in str(summary.get("series_points"))  # a summary, not raw points
    quiet = await call(rig, "series_summary", host="local", metric="load5")
    assert quiet["status"] == "no_data"
    wrong = await call(rig, "series_summary", host="local", metric="load_average")
    assert wrong["status"] == "error"
    assert "load1" in wrong["message"]  # the valid metrics are named


async def test_run_diagnostics_goes_through_the_audited_path(rig: AssistantRig) -> None:
    found = await call(rig, "run_diagnostics", host="local", analyzers=["zombies"])
    assert found["status"] in ("success", "no_data")
    assert found["worst"] is not None
    records = await rig.audit(event="run_intent")
    assert found["run_id"] in {r.run_id for r in records}
    unknown = await call(rig, "run_diagnostics", host="local", analyzers=["astrology"])
    assert unknown["status"] == "error"
    assert "astrology" in unknown["message"]


# --- commands through the execution path --------------------------------------------------


async def test_read_command_runs_as_the_user_and_is_audited(rig: AssistantRig) -> None:
    ran = await call(rig, "run_command", hosts=["local"], argv=["echo", "hello from tend"])
    assert ran["status"] == "success"
    assert ran["risk"] == "read"
    [host] = ran["hosts"]
    assert host["exit_code"] == 0
    assert host["stdout"]["text"] == "hello from tend\n"
    assert host["stdout"]["cut"] is False
    operator = await rig.caller(Role.OPERATOR)
    events = [(r.event, r.actor, r.argv) for r in await rig.audit(host="local")]
    assert ("run_intent", operator.username, ["echo", "hello from tend"]) in events
    assert ("run_result", operator.username, ["echo", "hello from tend"]) in events


async def test_long_output_is_cut_and_paged_through_its_handle(rig: AssistantRig) -> None:
    rig.budget_tokens = 8_000  # one tool output may take ~1.4 K tokens
    ran = await call(rig, "run_command", hosts=["local"], argv=["seq", "1", "100000"])
    stdout = ran["hosts"][0]["stdout"]
    assert stdout["cut"] is True
    assert stdout["total_bytes"] == len("".join(f"{i}\n" for i in range(1, 100001)))
    assert stdout["text"].startswith("1\n2\n3\n")
    assert stdout["text"].endswith("99999\n100000\n")
    assert len(stdout["text"]) < 10_000
    assert stdout["handle"] in stdout["text"]  # the note says how to page

    def page_middle(messages: Any) -> Call:
        result = as_dict(last_result(messages))
        return Call("read_output", {"handle": result["hosts"][0]["stdout"]["handle"]})

    script = ScriptedModel(
        Call("run_command", {"hosts": ["local"], "argv": ["seq", "1", "100000"]}), page_middle
    )
    outcome = await rig.ask(script)
    page = outcome.result("read_output")
    assert page["status"] == "success"
    assert page["text"].startswith("1\n2\n")
    assert page["next_offset"] is not None
    lost = await call(rig, "read_output", handle="0123456789abcdef")
    assert lost["status"] == "error"


async def test_change_becomes_the_same_pending_approval(rig: AssistantRig) -> None:
    flag = str(rig.tmp_path / "flag")
    outcome = await rig.ask(
        ScriptedModel(Call("run_command", {"hosts": ["local"], "argv": ["touch", flag]}))
    )
    assert outcome.done.status == "waiting"
    [event] = outcome.approvals
    assert (event.argv, event.hosts, event.risk) == (["touch", flag], ["local"], "change")
    assert outcome.done.pending_approvals == [event.approval_id]
    response = await rig.harness.client.get(
        f"/api/v1/approvals/{event.approval_id}",
        headers=rig.harness.jwt(await rig.harness.user(Role.VIEWER)),
    )
    assert response.status_code == 200
    approval = response.json()
    assert approval["status"] == "pending"
    assert approval["requester"] == (await rig.caller(Role.OPERATOR)).username
    assert "assistant" in approval["reason"]
    assert not (rig.tmp_path / "flag").exists()  # nothing ran
    assert await rig.audit(event="run_intent") == []
    [requested] = await rig.audit(event="approval_requested")
    assert requested.approval_id == event.approval_id


async def test_viewer_cannot_get_a_change_even_pending(rig: AssistantRig) -> None:
    refused = await call(
        rig, "run_command", role=Role.VIEWER, hosts=["local"], argv=["systemctl", "restart", "x"]
    )
    assert refused["status"] == "error"
    assert refused["risk"] == "change"
    assert "viewers cannot request changes" in refused["message"]
    viewer = await rig.caller(Role.VIEWER)
    [record] = await rig.audit(event="refused")
    assert (record.actor, record.argv, record.risk) == (
        viewer.username,
        ["systemctl", "restart", "x"],
        "change",
    )
    assert await rig.audit(event="approval_requested") == []
    assert await rig.audit(event="run_intent") == []
    read = await call(rig, "run_command", role=Role.VIEWER, hosts=["local"], argv=["echo", "ok"])
    assert read["status"] == "success"  # viewers may still read


async def test_forbidden_command_is_refused_with_the_reason(rig: AssistantRig) -> None:
    refused = await call(rig, "run_command", hosts=["local"], argv=["rm", "-rf", "/"])
    assert refused["status"] == "error"
    assert refused["risk"] == "forbidden"
    assert "root filesystem" in refused["policy_reason"]
    [record] = await rig.audit(event="refused")
    assert record.argv == ["rm", "-rf", "/"]
    assert await rig.audit(event="run_intent") == []


async def test_unknown_host_is_an_error_not_a_crash(rig: AssistantRig) -> None:
    missing = await call(rig, "run_command", hosts=["web-9"], argv=["uptime"])
    assert missing["status"] == "error"
    assert "web-9" in missing["message"]


async def test_malformed_arguments_go_back_as_a_retry(rig: AssistantRig) -> None:
    script = ScriptedModel(
        Call("run_command", {"hosts": ["local"], "argv": "rm -rf /"}),  # a string, not argv
        Call("run_command", '{"hosts": ["local"], "argv": ["echo", "hi"'),  # broken JSON
        Call("run_command", {"hosts": ["local"], "argv": ["echo", "fixed"]}),
    )
    outcome = await rig.ask(script)
    first, second, third = outcome.results("run_command")
    assert (first.status, second.status, third.status) == ("retry", "retry", "success")
    retried = tool_returns(script.requests[1])[-1]
    assert retried.outcome == "retried"
    assert "argv" in str(retried.content)  # the validation error names the field
    assert [r.argv for r in await rig.audit(event="run_intent")] == [["echo", "fixed"]]


# --- convenience tools (each an argv through the same path) -------------------------------


async def test_read_logs_tails_a_file_with_a_byte_cap(rig: AssistantRig) -> None:
    log = rig.tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    found = await call(rig, "read_logs", host="local", file=str(log), max_bytes=1024)
    assert found["status"] == "success"
    text = found["hosts"][0]["stdout"]["text"]
    assert text.endswith("line 4999\n")
    assert len(text.encode()) <= 1024
    assert found["argv"] == ["tail", "-c", "1024", "--", str(log)]
    empty = rig.tmp_path / "empty.log"
    empty.write_text("")
    assert (await call(rig, "read_logs", host="local", file=str(empty)))["status"] == "no_data"


async def test_read_logs_builds_a_journal_query(rig: AssistantRig) -> None:
    found = await call(
        rig, "read_logs", host="local", unit="ssh.service", priority="err", since="-2h", lines=50
    )
    assert found["argv"] == [
        "journalctl",
        "--no-pager",
        "--output",
        "short-iso",
        "--lines",
        "50",
        "--unit",
        "ssh.service",
        "--priority",
        "err",
        "--since=-2h",
    ]
    assert found["risk"] == "read"
    assert found["status"] in ("success", "no_data")  # the journal may be empty in a container
    script = ScriptedModel(Call("read_logs", {"host": "local", "unit": "--help"}))
    outcome = await rig.ask(script)
    assert outcome.results("read_logs")[0].status == "retry"  # no option injection


async def test_processes_and_service_status_and_disk_usage(rig: AssistantRig) -> None:
    listed = await call(rig, "processes", host="local", sort="memory", limit=5)
    assert listed["argv"] == ps_argv("memory")
    lines = listed["hosts"][0]["stdout"]["text"].splitlines()
    assert lines[0].split()[:3] == ["PID", "PPID", "USER"]
    assert len(lines) == 6
    status = await call(rig, "service_status", host="local", unit="ssh")
    assert status["argv"][:2] == ["systemctl", "status"]
    assert status["hosts"][0]["status"] in ("ok", "failed")  # ran; the exit code says the state
    data = rig.tmp_path / "usage-tree"
    (data / "big").mkdir(parents=True)
    (data / "big" / "blob").write_bytes(b"x" * 2_000_000)
    (data / "small").mkdir()
    usage = await call(rig, "disk_usage", host="local", path=str(data))
    assert usage["status"] == "success", usage
    assert usage["filesystem"]["size_bytes"] > 0
    largest = [(Path(e["path"]).name, e["bytes"]) for e in usage["largest"]]
    assert largest[0][0] == data.name  # the path itself holds everything below it
    assert largest[1][0] == "big"
    assert largest[1][1] >= 2_000_000
    intents = [r.argv for r in await rig.audit(event="run_intent")]
    assert df_argv(str(data)) in intents
