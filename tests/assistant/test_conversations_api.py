"""Conversations over HTTP, through the real OpenAI client code against the mock provider.

Streams (event names and order), transcripts, a restart in the middle of a conversation, a
change waiting for approval that resumes once decided, ownership, and what happens without a
model, while another message is answered, and when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tend.assistant.conversation_models import Conversation, ConversationTurn
from tend.assistant.conversations import INTERRUPTED, claim
from tend.assistant.limits import UsageLimiter
from tend.auth.models import Role
from tend.db import utcnow
from tend.settings import Settings
from tests.assistant.live import live_server
from tests.assistant.mock_provider import MockProvider, call, text, tool_calls
from tests.conftest import Harness, make_settings, start_harness

Event = tuple[str, dict[str, Any], int | None]


def parse_sse(body: str) -> list[Event]:
    """(event name, data, id) of every server-sent event of a body."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        seq = int(fields["id"]) if "id" in fields else None
        events.append((fields["event"], json.loads(fields["data"]), seq))
    return events


def names(events: list[Event]) -> list[str]:
    """Event names with runs of ``text`` collapsed to one."""
    out: list[str] = []
    for name, _, _ in events:
        if not (name == "text" and out and out[-1] == "text"):
            out.append(name)
    return out


def report(summary: str, **fields: Any) -> Any:
    return tool_calls(call("submit_report", summary=summary, **fields))


@pytest.fixture
def settings(
    tmp_path: Path, database_target: dict[str, Any], mock_provider: MockProvider
) -> Settings:
    """The backend under test, with the model pointed at the mock provider."""
    return make_settings(tmp_path, **database_target, **mock_provider.settings())


@pytest.fixture
async def lite(tmp_path: Path, mock_provider: MockProvider) -> AsyncIterator[Harness]:
    """A started tend on SQLite with the mock provider, for tests not about the database."""
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        **mock_provider.settings(),
    )
    async with start_harness(settings) as started:
        yield started


async def new_conversation(harness: Harness, headers: dict[str, str], **body: Any) -> str:
    created = await harness.client.post("/api/v1/conversations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def ask(harness: Harness, cid: str, headers: dict[str, str], content: str) -> list[Event]:
    answer = await harness.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": content}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    return parse_sse(answer.text)


async def settled(harness: Harness, cid: str, headers: dict[str, str], turns: int) -> Any:
    """The transcript once ``turns`` turns exist and none runs (the resume job is async)."""
    for _ in range(200):
        shown = await harness.client.get(f"/api/v1/conversations/{cid}", headers=headers)
        assert shown.status_code == 200, shown.text
        body = shown.json()
        if body["turn_count"] >= turns and body["status"] != "running":
            return body
        await asyncio.sleep(0.05)
    pytest.fail(f"conversation did not settle: {body['status']}, {body['turn_count']} turns")


async def test_a_turn_streams_its_events_in_order_and_the_transcript_keeps_them(
    harness: Harness, mock_provider: MockProvider
) -> None:
    headers = harness.jwt(await harness.user(Role.VIEWER))
    cid = await new_conversation(harness, headers, hosts=["local"])
    mock_provider.script(
        tool_calls(call("list_hosts"), content="Let me look at the inventory first."),
        report(
            "local is the only host and it is fine",
            findings=[{"title": "one host", "severity": "info", "evidence": ["local"]}],
        ),
    )
    events = await ask(harness, cid, headers, "Which hosts do I have, and are they fine?")

    assert names(events) == ["text", "usage", "tool_call", "tool_result", "usage", "done"]
    streamed = "".join(data["delta"] for name, data, _ in events if name == "text")
    assert streamed == "Let me look at the inventory first."
    by_name = {name: data for name, data, _ in events}
    assert by_name["tool_call"]["tool"] == "list_hosts"
    assert by_name["tool_result"]["status"] == "success"
    assert [h["name"] for h in by_name["tool_result"]["result"]["hosts"]] == ["local"]
    done = by_name["done"]
    assert done["status"] == "completed"
    assert done["report"]["summary"] == "local is the only host and it is fine"
    assert done["usage"]["requests"] == 2
    ids = [seq for name, _, seq in events if name != "text"]
    assert ids == sorted(ids)
    assert None not in ids

    shown = await settled(harness, cid, headers, 1)
    assert shown["title"] == "Which hosts do I have, and are they fine?"
    assert shown["hosts"] == ["local"]
    assert [e["type"] for e in shown["events"]] == names(events)
    assert shown["events"][0]["data"]["delta"] == streamed  # deltas joined in the log
    [turn] = shown["turns"]
    assert turn["status"] == "completed"
    assert turn["report"]["summary"] == done["report"]["summary"]
    assert turn["usage"]["input_tokens"] == done["usage"]["input_tokens"] > 0
    assert shown["usage"]["requests"] == 2

    listed = await harness.client.get("/api/v1/conversations", headers=headers)
    assert [c["id"] for c in listed.json()] == [cid]
    assert listed.json()[0]["status"] == "idle"


async def test_a_waiting_conversation_survives_a_restart_and_resumes_when_approved(
    settings: Settings, mock_provider: MockProvider, tmp_path: Path
) -> None:
    target = tmp_path / "after-restart"
    async with start_harness(settings) as first:
        user = await first.user(Role.OPERATOR, name="alice")
        admin = await first.user(Role.ADMIN, name="boss")
        headers = first.jwt(user)
        cid = await new_conversation(first, headers)
        mock_provider.script(
            tool_calls(call("run_command", hosts=["local"], argv=["mkdir", str(target)]))
        )
        before = await ask(first, cid, headers, "Create the directory after-restart.")
        approval_id = before[-1][1]["pending_approvals"][0]
        transcript = (
            await first.client.get(f"/api/v1/conversations/{cid}", headers=headers)
        ).json()

    async with start_harness(settings, first_start=False) as second:
        headers = second.jwt(user)
        again = await second.client.get(f"/api/v1/conversations/{cid}", headers=headers)
        assert again.json() == transcript
        assert again.json()["status"] == "waiting"
        mock_provider.script(text("Created it."))
        approved = await second.client.post(
            f"/api/v1/approvals/{approval_id}/approve", json={}, headers=second.jwt(admin)
        )
        assert approved.status_code == 200, approved.text
        resumed = await settled(second, cid, headers, 2)
        assert resumed["turns"][1]["report"]["summary"] == "Created it."
        mock_provider.script(text("You asked me to create a directory."))
        after = await ask(second, cid, headers, "What did I ask you before?")
        assert after[-1][1]["status"] == "completed"

    assert target.is_dir()
    sent = mock_provider.requests[-1].body["messages"]
    said = [m.get("content") for m in sent]
    assert "Create the directory after-restart." in said
    assert "Created it." in said
    assert said[-1] == "What did I ask you before?"


async def test_a_change_waits_for_approval_then_the_turn_resumes_with_its_result(
    harness: Harness, mock_provider: MockProvider, tmp_path: Path
) -> None:
    operator = harness.jwt(await harness.user(Role.OPERATOR))
    approver = harness.jwt(await harness.user(Role.ADMIN))
    cid = await new_conversation(harness, operator, hosts=["local"])
    target = tmp_path / "made-by-the-assistant"
    mock_provider.script(
        tool_calls(
            call("run_command", hosts=["local"], argv=["mkdir", "-v", str(target)], reason="fix")
        )
    )
    events = await ask(harness, cid, operator, "Create the missing directory.")

    assert names(events) == ["usage", "tool_call", "tool_result", "approval_required", "done"]
    pending = events[3][1]
    assert pending["argv"] == ["mkdir", "-v", str(target)]
    assert events[2][1]["status"] == "approval_required"
    assert events[-1][1]["status"] == "waiting"
    assert events[-1][1]["pending_approvals"] == [pending["approval_id"]]
    assert not target.exists()  # nothing ran on the model's say-so
    waiting = await settled(harness, cid, operator, 1)
    assert waiting["status"] == "waiting"
    assert [(a["approval_id"], a["state"]) for a in waiting["approvals"]] == [
        (pending["approval_id"], "pending")
    ]

    mock_provider.script(report("the directory now exists"))
    decided = await harness.client.post(
        f"/api/v1/approvals/{pending['approval_id']}/approve", json={}, headers=approver
    )
    assert decided.status_code == 200, decided.text
    assert target.is_dir()

    resumed = await settled(harness, cid, operator, 2)
    assert resumed["status"] == "idle"
    assert [t["status"] for t in resumed["turns"]] == ["waiting", "completed"]
    assert resumed["turns"][1]["prompt"] is None
    assert resumed["turns"][1]["report"]["summary"] == "the directory now exists"
    assert resumed["approvals"][0]["state"] == "executed"
    # The model learned what the approved command printed, not just that it ran.
    result = json.loads(mock_provider.requests[-1].body["messages"][-1]["content"])
    assert result["status"] == "success"
    [host] = result["hosts"]
    assert host["exit_code"] == 0
    assert "created directory" in host["stdout"]["text"]


async def test_a_denied_change_resumes_with_the_refusal(
    tmp_path: Path, mock_provider: MockProvider
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        **mock_provider.settings(),
    )
    async with start_harness(settings) as harness:
        operator = harness.jwt(await harness.user(Role.OPERATOR))
        approver = harness.jwt(await harness.user(Role.ADMIN))
        cid = await new_conversation(harness, operator)
        mock_provider.script(
            tool_calls(call("run_command", hosts=["local"], argv=["systemctl", "restart", "x"]))
        )
        events = await ask(harness, cid, operator, "Restart x.")
        approval_id = events[-1][1]["pending_approvals"][0]
        mock_provider.script(report("the restart was denied, so nothing changed"))
        denied = await harness.client.post(
            f"/api/v1/approvals/{approval_id}/deny", json={"note": "not now"}, headers=approver
        )
        assert denied.status_code == 200, denied.text
        resumed = await settled(harness, cid, operator, 2)
    assert resumed["turns"][1]["status"] == "completed"
    assert resumed["approvals"][0]["state"] == "denied"
    result = json.loads(mock_provider.requests[-1].body["messages"][-1]["content"])
    assert result["status"] == "error"
    assert "denied by" in result["message"]
    assert "not now" in result["message"]


async def test_someone_elses_conversation_is_not_found(
    lite: Harness, mock_provider: MockProvider
) -> None:
    owner = lite.jwt(await lite.user(Role.OPERATOR))
    other = lite.jwt(await lite.user(Role.OPERATOR))
    admin = lite.jwt(await lite.user(Role.ADMIN))
    cid = await new_conversation(lite, owner)
    base = f"/api/v1/conversations/{cid}"
    for method, path, body in (
        ("GET", base, None),
        ("POST", f"{base}/messages", {"content": "hello"}),
        ("GET", f"{base}/events", None),
        ("POST", f"{base}/resume", None),
    ):
        response = await lite.client.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "NotFound"
    assert (await lite.client.get("/api/v1/conversations", headers=other)).json() == []
    # Admins may read every conversation, never continue another user's.
    assert (await lite.client.get(base, headers=admin)).status_code == 200
    everyone = await lite.client.get("/api/v1/conversations?all=true", headers=admin)
    assert [c["id"] for c in everyone.json()] == [cid]
    refused = await lite.client.post(f"{base}/messages", json={"content": "hi"}, headers=admin)
    assert refused.status_code == 404
    assert mock_provider.requests == []


async def test_unknown_hosts_and_empty_messages_are_refused(
    lite: Harness, mock_provider: MockProvider
) -> None:
    headers = lite.jwt(await lite.user(Role.VIEWER))
    unknown = await lite.client.post(
        "/api/v1/conversations", json={"hosts": ["local", "ghost"]}, headers=headers
    )
    assert unknown.status_code == 422
    assert "ghost" in unknown.json()["detail"]
    cid = await new_conversation(lite, headers)
    empty = await lite.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "  "}, headers=headers
    )
    assert empty.status_code == 422
    assert (await lite.client.get("/api/v1/conversations/nope", headers=headers)).status_code == 404


async def test_without_a_model_the_api_says_how_to_configure_one(sqlite_settings: Settings) -> None:
    async with start_harness(sqlite_settings) as harness:
        headers = harness.jwt(await harness.user(Role.VIEWER))
        cid = await new_conversation(harness, headers)
        asked = await harness.client.post(
            f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=headers
        )
        assert asked.status_code == 503
        assert asked.json()["error"] == "AssistantNotConfigured"
        assert "TEND_LLM_MODEL" in asked.json()["detail"]
        assert not asked.headers["content-type"].startswith("text/event-stream")
        shown = await harness.client.get(f"/api/v1/conversations/{cid}", headers=headers)
        assert shown.json()["turns"] == []  # nothing started
        # Diagnostics still work without a model.
        checked = await harness.client.post(
            "/api/v1/hosts/local/diagnose",
            json={"analyzers": ["clock"]},
            headers=harness.jwt(await harness.user(Role.OPERATOR)),
        )
        assert checked.status_code == 200, checked.text


async def test_a_second_message_while_one_is_answered_is_a_conflict(
    lite: Harness, mock_provider: MockProvider
) -> None:
    headers = lite.jwt(await lite.user(Role.VIEWER))
    cid = await new_conversation(lite, headers)
    mock_provider.script(
        tool_calls(call("run_command", hosts=["local"], argv=["sleep", "0.5"])), text("slept")
    )
    first = asyncio.create_task(ask(lite, cid, headers, "Sleep a second."))
    for _ in range(100):
        shown = await lite.client.get(f"/api/v1/conversations/{cid}", headers=headers)
        if shown.json()["status"] == "running":
            break
        await asyncio.sleep(0.02)
    second = await lite.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "and now?"}, headers=headers
    )
    assert second.status_code == 409
    assert "another message" in second.json()["detail"]
    assert (await first)[-1][1]["status"] == "completed"


async def test_the_turn_goes_on_when_the_client_disconnects(
    tmp_path: Path, mock_provider: MockProvider
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        **mock_provider.settings(),
    )
    async with start_harness(settings) as first:
        headers = first.jwt(await first.user(Role.VIEWER))
    mock_provider.script(
        tool_calls(call("run_command", hosts=["local"], argv=["sleep", "0.5"])),
        report("slept well"),
    )
    with live_server(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            created = await client.post("/api/v1/conversations", json={}, headers=headers)
            cid = created.json()["id"]
            seen = []
            async with client.stream(
                "POST",
                f"/api/v1/conversations/{cid}/messages",
                json={"content": "Sleep, then report."},
                headers=headers,
            ) as response:
                async for line in response.aiter_lines():
                    seen.append(line)
                    if line == "event: tool_call":
                        break  # hang up while the command still runs
            assert "event: done" not in seen
            for _ in range(200):
                shown = (await client.get(f"/api/v1/conversations/{cid}", headers=headers)).json()
                if shown["status"] != "running":
                    break
                await asyncio.sleep(0.05)
            # A client that comes back replays the log from where it was.
            replay = await client.get(
                f"/api/v1/conversations/{cid}/events", params={"after": 2}, headers=headers
            )
    assert shown["turns"][0]["status"] == "completed"
    assert shown["turns"][0]["report"]["summary"] == "slept well"
    assert [e["type"] for e in shown["events"]] == [
        "usage",
        "tool_call",
        "tool_result",
        "usage",
        "done",
    ]
    assert [name for name, _, _ in parse_sse(replay.text)] == ["tool_result", "usage", "done"]


async def test_a_failing_decision_hook_never_undoes_a_decision(
    lite: Harness, tmp_path: Path
) -> None:
    async def broken(outcome: Any) -> None:
        raise RuntimeError("hook failed")

    lite.context.execution.decision_hooks.insert(0, broken)
    operator = lite.jwt(await lite.user(Role.OPERATOR))
    requested = await lite.client.post(
        "/api/v1/runs",
        json={"argv": ["mkdir", str(tmp_path / "hooked")], "targets": ["local"]},
        headers=operator,
    )
    assert requested.status_code == 202, requested.text
    approved = await lite.client.post(
        f"/api/v1/approvals/{requested.json()['approval_id']}/approve",
        json={},
        headers=lite.jwt(await lite.user(Role.ADMIN)),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"]["status"] == "executed"
    assert (tmp_path / "hooked").is_dir()


async def test_a_turn_lost_with_its_server_is_closed_by_the_next_message(
    lite: Harness, mock_provider: MockProvider
) -> None:
    user = await lite.user(Role.VIEWER)
    headers = lite.jwt(user)
    cid = await new_conversation(lite, headers)
    database = lite.context.database
    # A turn that was running when its server died: claimed, started, never finished.
    lost = await claim(database, cid, Role.VIEWER)
    async with database.session() as session:
        session.add(
            ConversationTurn(
                conversation_id=cid, seq=lost.turn, prompt="lost?", status="running", model="m"
            )
        )
    busy = await lite.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"content": "hello?"}, headers=headers
    )
    assert busy.status_code == 409  # its claim still holds
    async with database.session() as session:
        row = await session.get(Conversation, cid)
        assert row is not None
        row.lease_until = utcnow() - timedelta(seconds=1)  # ... until it runs out

    mock_provider.script(text("Here again."))
    events = await ask(lite, cid, headers, "hello?")
    assert events[-1][1]["status"] == "completed"
    shown = await settled(lite, cid, headers, 2)
    assert [t["status"] for t in shown["turns"]] == ["failed", "completed"]
    assert shown["turns"][0]["error"] == INTERRUPTED
    assert [(e["turn"], e["type"]) for e in shown["events"][:2]] == [(1, "error"), (1, "done")]


async def test_limits_reached_are_said_clearly(tmp_path: Path, mock_provider: MockProvider) -> None:
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        assistant_max_steps=1,
        assistant_daily_tokens=50_000,
        **mock_provider.settings(),
    )
    async with start_harness(settings) as harness:
        user = await harness.user(Role.VIEWER)
        headers = harness.jwt(user)
        cid = await new_conversation(harness, headers)
        # One model request per run: a tool call needs a second one, so the run stops.
        mock_provider.script(tool_calls(call("list_hosts")))
        events = await ask(harness, cid, headers, "List the hosts.")
        assert names(events)[-2:] == ["error", "done"]
        assert events[-2][1]["kind"] == "step_limit"
        assert "after 1 steps" in events[-2][1]["message"]
        assert events[-1][1]["status"] == "failed"
        # The day's tokens used up: refused before anything streams, saying until when.
        limiter = UsageLimiter.from_settings(harness.context.database, settings)
        await limiter.record(user.id, requests=1, input_tokens=50_000, output_tokens=0)
        refused = await harness.client.post(
            f"/api/v1/conversations/{cid}/messages", json={"content": "again"}, headers=headers
        )
    assert refused.status_code == 429
    assert "daily assistant limit of 50,000 tokens is used up" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
