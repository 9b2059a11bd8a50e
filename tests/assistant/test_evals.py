"""``tend eval``: real faults, the assistant against the mock provider, a pass and a fail."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography import x509
from typer.testing import CliRunner

from tend.assistant.eval_faults import RECIPES, expiring_cert, listening_port, log_file, zombies
from tend.assistant.evals import EvalCaseError, load_cases
from tend.cli.main import app as cli_app
from tests.assistant.mock_provider import MockProvider, call, tool_calls

SHIPPED = Path(__file__).parents[2] / "evals" / "cases"

OOM_CASE = """\
id: a-oom
fault:
  recipe: log_file
  filler_lines: 50
  lines: ["kernel: Out of memory: Killed process 4242 (java) total-vm:8123456kB"]
question: Why did java on local die? Its log is {path}.
expect:
  keywords: [java]
  any_keywords: [out of memory, oom]
  tools: [read_logs]
  severity: warning
  max_approvals: 0
"""
PORT_CASE = """\
id: b-port
fault: {recipe: listening_port}
question: Which process listens on port {port} of local?
expect:
  keywords: ["{port}", python]
"""


def env_for(mock: MockProvider) -> dict[str, str]:
    values = mock.settings("openai:gpt-4.1")
    env = {f"TEND_{key.upper()}": str(value) for key, value in values.items()}
    return {**env, "COLUMNS": "250"}  # a wide terminal: table cells are not wrapped


async def tend_eval(env: dict[str, str], *args: str) -> Result:
    """Run ``tend eval`` in a thread (the mock provider answers from this event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli_app, ["eval", *args], env=env)


def script_two_cases(mock: MockProvider, workdir: Path) -> None:
    mock.script(
        tool_calls(call("read_logs", host="local", file=f"{workdir}/a-oom/logs/app.log")),
        tool_calls(
            call(
                "submit_report",
                summary="The kernel's OOM killer ended java: Out of memory.",
                findings=[
                    {
                        "title": "java was killed for lack of memory",
                        "severity": "critical",
                        "evidence": ["Out of memory: Killed process 4242 (java)"],
                    }
                ],
            )
        ),
        tool_calls(call("submit_report", summary="I could not tell which process it is.")),
    )


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    directory = tmp_path / "cases"
    directory.mkdir()
    (directory / "a-oom.yaml").write_text(OOM_CASE)
    (directory / "b-port.yaml").write_text(PORT_CASE)
    return directory


async def test_eval_reports_a_pass_and_a_fail_per_model(
    cases: Path, tmp_path: Path, mock_provider: MockProvider
) -> None:
    workdir = tmp_path / "work"
    script_two_cases(mock_provider, workdir)
    env = env_for(mock_provider)
    result = await tend_eval(
        env, str(cases), "--json", "--workdir", str(workdir), "--min-pass-rate", "0.9"
    )
    assert result.exit_code == 1, result.output  # 50 % is under the asked 90 %
    [summary] = json.loads(result.stdout)
    assert summary["model"] == "openai:gpt-4.1"
    assert (summary["cases"], summary["passed"], summary["failed"]) == (2, 1, 1)
    assert summary["pass_rate"] == 0.5
    passed, failed = summary["results"]
    assert (passed["case"], passed["status"], passed["failures"]) == ("a-oom", "passed", [])
    assert passed["tool_calls"] == ["read_logs"]
    assert passed["requests"] == 2
    assert passed["input_tokens"] > 0
    assert passed["output_tokens"] > 0
    assert passed["latency"] > 0
    assert summary["input_tokens"] == passed["input_tokens"] + failed["input_tokens"]
    assert failed["case"] == "b-port"
    assert failed["status"] == "failed"
    missing = [f for f in failed["failures"] if f.startswith("missing ")]
    assert len(missing) == 2  # the port and "python"
    assert missing[1] == "missing 'python'"
    # The tool really read the fault's log: its line reached the model.
    assert "Killed process 4242 (java)" in mock_provider.requests[1].text
    assert mock_provider.pending == 0

    script_two_cases(mock_provider, workdir)
    table = await tend_eval(env, str(cases), "--workdir", str(workdir))
    assert table.exit_code == 0, table.output
    assert "openai:gpt-4.1: 1/2 passed (50%), 0 skipped" in table.stdout
    assert "missing 'python'" in table.stdout


async def test_eval_without_a_model_says_how_to_configure_one(cases: Path) -> None:
    result = await tend_eval({}, str(cases))
    assert result.exit_code == 2
    assert "TEND_LLM_MODEL" in result.output


def test_the_shipped_cases_are_valid_and_varied() -> None:
    shipped = load_cases(SHIPPED)
    assert len(shipped) >= 10
    recipes = {case.fault.recipe for case in shipped if case.fault}
    assert len(recipes) >= 7
    assert recipes <= set(RECIPES)
    assert all(case.expect.model_dump(exclude_defaults=True) for case in shipped)


def test_a_broken_case_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: x\nfault: {recipe: volcano}\nquestion: q\nexpect: {}\n")
    with pytest.raises(EvalCaseError, match=r"bad\.yaml: unknown recipe 'volcano'"):
        load_cases(tmp_path)


def test_fault_recipes_make_the_problem_real_and_take_it_down(tmp_path: Path) -> None:
    with zombies(tmp_path, {"count": 3}) as made:
        children = Path(f"/proc/{made['pid']}/task/{made['pid']}/children").read_text().split()
        states = [Path(f"/proc/{c}/stat").read_text().split(") ")[1][0] for c in children]
        assert states == ["Z", "Z", "Z"]
    assert not Path(f"/proc/{made['pid']}").exists()  # the parent was stopped and reaped

    with listening_port(tmp_path, {}) as made:
        socket.create_connection(("127.0.0.1", int(made["port"])), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(made["port"])), timeout=5)

    with expiring_cert(tmp_path, {"days": 3, "name": "soon.example.test"}) as made:
        cert = x509.load_pem_x509_certificate(Path(made["path"]).read_bytes())
        left = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert cert.subject.rfc4514_string() == "CN=soon.example.test"
        assert 32 < left.days < 35  # valid from 30 days ago until 3 days from now

    options: dict[str, Any] = {"lines": ["THE LINE"], "filler_lines": 10, "at": 0.5}
    with log_file(tmp_path, options) as made:
        lines = Path(made["path"]).read_text().splitlines()
        assert len(lines) == 11
        assert lines[5] == "THE LINE"
