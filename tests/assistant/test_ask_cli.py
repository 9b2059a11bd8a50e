"""``tend ask`` against a real server whose model is the mock provider.

Without a terminal, approvals stay pending and their ids are printed; on a terminal (a real
pseudo-terminal here) the user approves inline and the investigation goes on.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from tend.auth.models import Role
from tend.cli.main import app as cli_app
from tend.settings import Settings
from tests.assistant.live import live_server
from tests.assistant.mock_provider import MockProvider, Reply, ToolCall, call, text, tool_calls
from tests.conftest import make_settings, start_harness


@dataclass
class Server:
    url: str
    token: str

    def env(self) -> dict[str, str]:
        return {"TEND_URL": self.url, "TEND_TOKEN": self.token, "COLUMNS": "200"}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def start(settings: Settings) -> tuple[Settings, str]:
    """Prepare the database and an operator's API token before the server starts."""
    async with start_harness(settings) as harness:
        user = await harness.user(Role.OPERATOR, name="ops")
        headers = await harness.api_token(user)
    return settings, headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def sqlite_mock_settings(tmp_path: Path, mock_provider: MockProvider) -> Settings:
    return make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        **mock_provider.settings(),
    )


@pytest.fixture
async def server(sqlite_mock_settings: Settings) -> Iterator[Server]:
    settings, token = await start(sqlite_mock_settings)
    with live_server(settings) as url:
        yield Server(url, token)


async def tend(server: Server, *args: str) -> Result:
    """Run ``tend ARGS`` in a thread (the mock provider answers from this event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli_app, list(args), env=server.env())


async def transcript(server: Server, cid: str, turns: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers()) as client:
        for _ in range(200):
            body: dict[str, Any] = (await client.get(f"/api/v1/conversations/{cid}")).json()
            if body["turn_count"] >= turns and body["status"] != "running":
                return body
            await asyncio.sleep(0.05)
    pytest.fail("the conversation did not settle")


def mkdir_call(target: Path) -> ToolCall:
    return call("run_command", hosts=["local"], argv=["mkdir", "-v", str(target)], reason="fix")


async def test_without_a_model_ask_says_how_to_configure_one(sqlite_settings: Settings) -> None:
    settings, token = await start(sqlite_settings)
    with live_server(settings) as url:
        result = await tend(Server(url, token), "ask", "why is local slow?")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "503" in lines[0]
    assert "TEND_LLM_MODEL" in lines[0]


async def test_ask_streams_and_leaves_approvals_pending_without_a_terminal(
    server: Server, mock_provider: MockProvider, tmp_path: Path
) -> None:
    target = tmp_path / "wanted"
    mock_provider.script(Reply(text="I will create it.", calls=(mkdir_call(target),)))
    asked = await tend(server, "ask", "Create the wanted directory", "-H", "local")
    assert asked.exit_code == 3, asked.output
    assert "I will create it." in asked.stdout
    assert '→ run_command({"hosts":["local"],"argv":["mkdir","-v",' in asked.output
    assert "← run_command: approval_required" in asked.output
    [approval_id] = re.findall(r"waiting for approval ([0-9a-f]{32})", asked.output)
    assert approval_id in asked.stdout.splitlines()
    cid = re.findall(r"conversation ([0-9a-f]{32})", asked.output)[0]
    assert not target.exists()

    mock_provider.script(report_reply("created it"))
    approved = await tend(server, "approvals", "approve", approval_id)
    assert approved.exit_code == 0, approved.output
    resumed = await transcript(server, cid, 2)
    assert resumed["turns"][1]["report"]["summary"] == "created it"
    assert target.is_dir()

    mock_provider.script(
        report_reply(
            "nginx looks stuck",
            findings=[
                {"title": "nginx is not answering", "severity": "warning", "evidence": ["502"]}
            ],
            proposed_actions=[
                {"host": "local", "argv": ["systemctl", "restart", "nginx"], "why": "unstick it"}
            ],
        )
    )
    again = await tend(server, "ask", "--conversation", cid, "And nginx?")
    assert again.exit_code == 0, again.output
    assert "nginx looks stuck" in again.stdout
    assert "WARNING nginx is not answering" in again.stdout
    assert "[change] local: systemctl restart nginx — unstick it" in again.stdout
    sent = mock_provider.requests[-1].body["messages"]
    assert any(m.get("content") == "Create the wanted directory" for m in sent)


def report_reply(summary: str, **fields: Any) -> Reply:
    return tool_calls(call("submit_report", summary=summary, **fields))


class Terminal:
    """``python -m tend ...`` on a pseudo-terminal: read what it prints, type answers."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tend", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, **env, "NO_COLOR": "1", "TERM": "dumb"},
            close_fds=True,
        )
        os.close(slave)
        self.output = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk.decode(errors="replace")

    async def wait_for(self, needle: str, seconds: float = 60) -> None:
        for _ in range(int(seconds / 0.05)):
            with self._lock:
                if needle in self.output:
                    return
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        pytest.fail(f"{needle!r} never appeared; output so far:\n{self.output}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    async def finish(self, seconds: float = 60) -> int:
        code = await asyncio.to_thread(self.proc.wait, seconds)
        await asyncio.to_thread(self._reader.join, 5)
        os.close(self.master)
        return code


async def test_on_a_terminal_ask_asks_for_approval_and_goes_on(
    server: Server, mock_provider: MockProvider, tmp_path: Path
) -> None:
    target = tmp_path / "made-inline"
    mock_provider.script(
        tool_calls(mkdir_call(target)),
        text("Done: the directory exists now."),
    )
    terminal = Terminal(["ask", "Create the directory", "-H", "local"], server.env())
    try:
        await terminal.wait_for("approve? [y]es / [n]o (deny) / [s]kip")
        assert "approval needed" in terminal.output
        assert f"mkdir -v {target} on local" in terminal.output
        terminal.type("y")
        code = await terminal.finish()
    finally:
        if terminal.proc.poll() is None:
            terminal.proc.kill()
    assert code == 0, terminal.output
    assert target.is_dir()
    assert "created directory" in terminal.output  # the run's results, shown after approving
    assert "Done: the directory exists now." in terminal.output
