"""The remote command line is shlex.join(argv), and the remote side gets exactly argv back."""

from __future__ import annotations

import asyncio
import json
import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tend.execution.transports import CommandSpec, SshPool, build_remote_command
from tests.execution.sshd import SshdFactory

# Any text an argv element may hold over SSH: no NUL, CR or newline (and no lone surrogates,
# which are not text at all).
ARG = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r"),
    max_size=24,
)
ECHO_ARGV = "import sys, json; print(json.dumps(sys.argv[1:]))"


@given(argv=st.lists(ARG, min_size=1, max_size=10))
@settings(max_examples=300, deadline=None)
def test_command_is_exactly_shlex_join(argv: list[str]) -> None:
    command = build_remote_command(CommandSpec(argv))
    assert command == shlex.join(argv)
    assert shlex.split(command) == argv


@pytest.mark.parametrize("bad", ["a\nb", "a\x00b", "a\rb"])
def test_unsafe_arguments_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="NUL, CR or newline"):
        build_remote_command(CommandSpec(["echo", bad]))


def test_env_and_cwd_are_argv_prefixes() -> None:
    command = build_remote_command(
        CommandSpec(["ls", "-l"], cwd="/srv/a b", env={"LC_ALL": "C", "X": "$(id)"})
    )
    assert command == shlex.join(["env", "-C", "/srv/a b", "--", "LC_ALL=C", "X=$(id)", "ls", "-l"])
    with pytest.raises(ValueError, match="environment variable name"):
        build_remote_command(CommandSpec(["ls"], env={"A;B": "x"}))


def test_remote_argv_round_trips(sshd_factory: SshdFactory) -> None:
    """Hypothesis argv lists reach a real remote process unchanged, over one pooled connection."""
    server = sshd_factory.one()
    loop = asyncio.new_event_loop()
    pool = SshPool()
    transport = pool.transport(server.target())

    @given(args=st.lists(ARG, max_size=8))
    @example(args=["$(touch /tmp/tend-pwned)", "`id`", "a;b", "*", "'", '"', "\\", "-n", ""])
    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def remote_sees_the_same_argv(args: list[str]) -> None:
        spec = CommandSpec(["python3", "-c", ECHO_ARGV, *args], timeout=20)
        result = loop.run_until_complete(transport.run(spec))
        assert result.ok, result.stderr.data
        assert json.loads(result.stdout.data) == args

    try:
        remote_sees_the_same_argv()
        assert pool.stats().connects == 1
    finally:
        loop.run_until_complete(pool.close())
        loop.close()
