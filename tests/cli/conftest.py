"""A real tend server on a loopback port (in a thread) for the CLI to talk to."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from tend.app import create_app
from tend.cli.main import app as cli_app
from tests.conftest import make_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cli:
    """Runs ``tend`` commands in-process with an environment pointing at the test server."""

    runner: CliRunner
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, token: str | None = None):
        env = dict(self.env)
        if token is not None:
            env["TEND_TOKEN"] = token
        return self.runner.invoke(cli_app, list(args), input=input, env=env)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "TEND_DATA_DIR": str(tmp_path / "data"),
        "TEND_PASSWORD_HASH_MEMORY_KIB": "1024",
        "TEND_PASSWORD_HASH_TIME_COST": "1",
        "TEND_LOG_FORMAT": "text",
    }


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(CliRunner(), cli_env)


@pytest.fixture
def server(cli_env: dict[str, str], tmp_path: Path, cli: Cli) -> Iterator[str]:
    """Start tend on a free loopback port with an admin ``ops`` created through the CLI."""
    created = cli("users", "create", "ops", "--role", "admin", input="ops-password-1\n")
    assert created.exit_code == 0, created.output
    settings = make_settings(tmp_path, data_dir=tmp_path / "data")
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("test server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    cli.env["TEND_URL"] = url
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
