"""``tend check`` against a real server: exit codes, the findings table, sections, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, cli, cli_env, server
from tests.cli.test_cli import make_token
from tests.diagnostics.conftest import write_certificate
from tests.execution.sshd import free_port

__all__ = ["cli", "cli_env", "server"]


@pytest.fixture
def certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the server's certificates analyzer looks at."""
    directory = tmp_path / "certs"
    directory.mkdir()
    monkeypatch.setenv("TEND_DIAGNOSTICS_CERT_DIRS", json.dumps([str(directory)]))
    monkeypatch.setenv("TEND_DIAGNOSTICS_SAMPLE_SECONDS", "1")
    return directory


@pytest.fixture
def check_server(certs: Path, server: str, cli: Cli) -> str:
    """The CLI test server, started after the certificate settings are in place."""
    cli.env["COLUMNS"] = "250"  # a wide terminal: table cells are not wrapped
    return server


def test_exit_codes_follow_the_worst_finding(certs: Path, check_server: str, cli: Cli) -> None:
    token = make_token(cli)
    now = datetime.now(UTC)
    write_certificate(certs / "fine.crt", "fine.example.test", now + timedelta(days=90))
    healthy = cli("check", "local", "-a", "certificates", token=token)
    assert healthy.exit_code == 0, healthy.output
    assert "local" in healthy.stdout
    assert "OK" in healthy.stdout
    assert "1 certificate(s), none expiring within 14 days" in healthy.stdout

    write_certificate(certs / "soon.crt", "soon.example.test", now + timedelta(days=10, hours=1))
    warning = cli("check", "local", "-a", "certificates", token=token)
    assert warning.exit_code == 1, warning.output
    assert "WARNING" in warning.stdout
    assert "certificate for soon.example.test expires in 10 day(s)" in warning.stdout
    assert f"file: {certs}/soon.crt" in warning.stdout
    assert "[read]" in warning.stdout  # each next step shows the policy's verdict
    assert "[change]" in warning.stdout

    write_certificate(certs / "gone.crt", "gone.example.test", now - timedelta(days=1, hours=1))
    critical = cli("check", "local", "-a", "certificates", "--json", token=token)
    assert critical.exit_code == 2, critical.output
    report = json.loads(critical.stdout)
    assert report["status"] == "critical"
    assert [f["severity"] for f in report["findings"]] == ["critical", "warning"]
    assert report["findings"][0]["title"].startswith("certificate for gone.example.test expired")


def test_unknown_host_or_analyzer_is_not_checked(check_server: str, cli: Cli) -> None:
    token = make_token(cli)
    ghost = cli("check", "ghost", token=token)
    assert ghost.exit_code == 3
    assert "404 NotFound" in ghost.output
    unknown = cli("check", "local", "-a", "crystal-ball", token=token)
    assert unknown.exit_code == 3
    assert "crystal-ball" in unknown.output
    assert "listening_ports" in unknown.output
    both = cli("check", "local", "-t", "web", token=token)
    assert both.exit_code == 2


def test_several_hosts_get_one_section_each(certs: Path, check_server: str, cli: Cli) -> None:
    token = make_token(cli)
    assert (
        cli("hosts", "add", "mirror", "--transport", "local", "-t", "pair", token=token).exit_code
        == 0
    )
    gone = cli(
        "hosts", "add", "gone", "-a", "127.0.0.1", "-p", str(free_port("127.0.0.1")), "-t", "pair",
        token=token,
    )  # fmt: skip
    assert gone.exit_code == 0, gone.output
    result = cli("check", "-t", "pair", "-a", "certificates", token=token)
    assert result.exit_code == 2, result.output  # "gone" cannot be reached
    assert "gone: CRITICAL" in result.stdout
    assert "gone cannot be reached" in result.stdout
    assert "mirror: OK" in result.stdout
    as_json = cli("check", "-t", "pair", "-a", "certificates", "--json", token=token)
    reports = json.loads(as_json.stdout)
    assert [r["host"] for r in reports] == ["gone", "mirror"]
    assert [r["status"] for r in reports] == ["critical", "ok"]
    everything = cli("check", "-a", "certificates", "--json", token=token)
    assert everything.exit_code == 2
    assert [r["host"] for r in json.loads(everything.stdout)] == ["gone", "local", "mirror"]
    nobody = cli("check", "-t", "nobody", token=token)
    assert nobody.exit_code == 3
    assert "no host carries tag 'nobody'" in nobody.output
