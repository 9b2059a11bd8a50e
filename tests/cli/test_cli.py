"""The ``tend`` command line, used the way an operator would, against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tend import __version__
from tend.migrate import head_revision
from tests.cli.conftest import Cli, free_port


def make_token(cli: Cli) -> str:
    result = cli("tokens", "create", "cli", "--username", "ops", input="ops-password-1\n")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("tend_")
    return token


def test_version(cli: Cli) -> None:
    result = cli("version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tend {__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tend", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"tend {__version__}"


def test_db_upgrade_reports_the_revision(cli: Cli, tmp_path: Path) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision()}" in result.stdout
    assert (tmp_path / "data" / "tend.db").exists()


def test_db_upgrade_on_unreachable_database_is_one_line(cli: Cli) -> None:
    cli.env["TEND_DATABASE_URL"] = "postgresql+asyncpg://tend:hunter2@127.0.0.1:1/none"
    result = cli("db", "upgrade")
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot migrate")
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_users_create_reads_stdin_and_refuses_bad_input(cli: Cli) -> None:
    ok = cli("users", "create", "alice", "--role", "operator", input="long-enough-pw\n")
    assert ok.exit_code == 0, ok.output
    assert "created user alice with role operator" in ok.output
    dup = cli("users", "create", "alice", input="long-enough-pw\n")
    assert dup.exit_code == 1
    assert dup.output.strip() == "error: user 'alice' already exists"
    short = cli("users", "create", "bob", input="short\n")
    assert short.exit_code == 1
    assert "password" in short.output
    assert "Traceback" not in short.output
    empty = cli("users", "create", "carol", input="")
    assert empty.exit_code == 1
    assert "no password on standard input" in empty.output
    bad_role = cli("users", "create", "dave", "--role", "root", input="long-enough-pw\n")
    assert bad_role.exit_code == 2


def test_commands_need_a_token(cli: Cli, server: str) -> None:
    result = cli("hosts", "list")
    assert result.exit_code == 1
    assert "TEND_TOKEN is not set" in result.output
    bad = cli("hosts", "list", token="tend_bogus")
    assert bad.exit_code == 1
    assert bad.output.strip() == "error: 401 Unauthorized: invalid API token"


def test_hosts_lifecycle(cli: Cli, server: str) -> None:
    token = make_token(cli)
    added = cli(
        "hosts",
        "add",
        "web-1",
        "-a",
        "10.0.0.7",
        "-p",
        "2222",
        "-u",
        "deploy",
        "-t",
        "prod",
        "-t",
        "web",
        token=token,
    )
    assert added.exit_code == 0, added.output
    assert "added host web-1" in added.output
    listed = cli("hosts", "list", "--json", token=token)
    hosts = {h["name"]: h for h in json.loads(listed.stdout)}
    assert set(hosts) == {"local", "web-1"}
    assert hosts["web-1"]["tags"] == ["prod", "web"]
    assert hosts["web-1"]["port"] == 2222
    table = cli("hosts", "list", "--tag", "prod", token=token)
    assert "web-1" in table.stdout
    assert "local" not in table.stdout
    dup = cli("hosts", "add", "web-1", "-a", "10.0.0.8", token=token)
    assert dup.exit_code == 1
    assert "409 Conflict" in dup.output
    bad = cli("hosts", "add", "Bad_Name", "-a", "x y", token=token)
    assert bad.exit_code == 1
    assert "name:" in bad.output
    assert "address:" in bad.output
    removed = cli("hosts", "remove", "web-1", token=token)
    assert removed.exit_code == 0
    missing = cli("hosts", "remove", "web-1", token=token)
    assert missing.exit_code == 1
    assert "404 NotFound" in missing.output


def test_users_and_tokens_over_the_api(cli: Cli, server: str) -> None:
    token = make_token(cli)
    assert cli("users", "create", "eve", input="eve-password-1\n").exit_code == 0
    listed = cli("users", "list", "--json", token=token)
    assert [u["username"] for u in json.loads(listed.stdout)] == ["eve", "ops"]
    assert "eve" in cli("users", "list", token=token).stdout
    disabled = cli("users", "disable", "eve", token=token)
    assert disabled.exit_code == 0
    assert "user eve is disabled" in disabled.output
    enabled = cli("users", "enable", "eve", token=token)
    assert "user eve is enabled" in enabled.output
    tokens = json.loads(cli("tokens", "list", "--json", token=token).stdout)
    assert [t["name"] for t in tokens] == ["cli"]
    assert "cli" in cli("tokens", "list", "--all", token=token).stdout
    second = cli("tokens", "create", "ro", "--role", "viewer", "--expires-days", "7", token=token)
    assert second.exit_code == 0, second.output
    ro_token = second.stdout.strip().splitlines()[-1]
    assert cli("users", "list", token=ro_token).exit_code == 1
    ro_id = next(
        t["id"]
        for t in json.loads(cli("tokens", "list", "--json", token=token).stdout)
        if t["name"] == "ro"
    )
    revoked = cli("tokens", "revoke", str(ro_id), token=token)
    assert revoked.exit_code == 0
    after = cli("hosts", "list", token=ro_token)
    assert after.output.strip() == "error: 401 Unauthorized: API token revoked"
    deleted = cli("users", "delete", "eve", "--yes", token=token)
    assert deleted.exit_code == 0
    gone = cli("users", "delete", "eve", "--yes", token=token)
    assert gone.exit_code == 1


def test_wrong_password_for_token_create(cli: Cli, server: str) -> None:
    result = cli("tokens", "create", "x", "-u", "ops", input="wrong-password\n")
    assert result.exit_code == 1
    assert "401 Unauthorized: invalid username or password" in result.output


def test_unreachable_server_is_one_line(cli: Cli) -> None:
    cli.env["TEND_URL"] = f"http://127.0.0.1:{free_port()}"
    result = cli("hosts", "list", token="tend_x")
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach tend at")
    assert len(result.output.strip().splitlines()) == 1


def test_serve_first_run_end_to_end(tmp_path: Path) -> None:
    """`tend serve` on an empty data dir: admin password printed once, login works, clean stop."""
    port = free_port()
    env = {**os.environ, "TEND_DATA_DIR": str(tmp_path / "data"), "TEND_LOG_FORMAT": "json"}
    env.pop("TEND_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tend", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        password = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(r"password: (\S+)", line)
            if match:
                password = match.group(1)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        assert password, "".join(output)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        login = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "admin", "password": password},
            timeout=10,
        )
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        hosts = httpx.get(f"{base}/api/v1/hosts", headers=headers, timeout=10)
        assert [h["name"] for h in hosts.json()] == ["local"]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    output.append(rest)
    log = "".join(output)
    assert proc.returncode == 0, log
    assert log.count(password) == 1, "the password must be printed exactly once"
    assert "Traceback" not in log
    json_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert json_lines, "logs are JSON when not on a terminal"
    assert all("request_id" in entry for entry in json_lines)


FIXTURES = Path(__file__).parent.parent / "fixtures" / "inventories"


def test_hosts_import_ansible_and_ssh_config(cli: Cli, server: str) -> None:
    token = make_token(cli)
    dry = cli("hosts", "import", str(FIXTURES / "hosts.ini"), "--dry-run", token=token)
    assert dry.exit_code == 0, dry.output
    assert "nothing imported" in dry.output
    assert json.loads(cli("hosts", "list", "--json", token=token).stdout)[0]["name"] == "local"
    imported = cli("hosts", "import", str(FIXTURES / "hosts.ini"), token=token)
    assert imported.exit_code == 0, imported.output
    assert "imported" in imported.output
    hosts = {h["name"]: h for h in json.loads(cli("hosts", "list", "--json", token=token).stdout)}
    assert len(hosts) > 2
    again = cli("hosts", "import", str(FIXTURES / "hosts.yml"), token=token)
    assert again.exit_code == 0, again.output
    assert "imported 0 new" in again.output
    refused = cli(
        "hosts", "import", str(FIXTURES / "hosts.yml"), "--on-conflict", "error", token=token
    )
    assert refused.exit_code == 1
    assert "409 Conflict" in refused.output
    ssh = cli("hosts", "import", str(FIXTURES / "ssh_config"), token=token)
    assert ssh.exit_code == 0, ssh.output
    tagged = json.loads(cli("hosts", "list", "--tag", "ssh-config", "--json", token=token).stdout)
    assert tagged
    missing = cli("hosts", "import", "/nonexistent/inventory", token=token)
    assert missing.exit_code == 1
    assert missing.output.startswith("error: cannot read")


def test_hosts_import_reports_bad_files(cli: Cli, server: str, tmp_path: Path) -> None:
    token = make_token(cli)
    bad = tmp_path / "bad.ini"
    bad.write_text("[web]\nw1 ansible_host=10.0.0.1 ansible_port=ssh\n")
    result = cli("hosts", "import", str(bad), token=token)
    assert result.exit_code == 1
    assert "port" in result.output
    assert "Traceback" not in result.output
