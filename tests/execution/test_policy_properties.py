"""Property-based tests of the command policy (hypothesis)."""

from __future__ import annotations

import shlex
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tend.execution.policy import (
    InvalidArgvError,
    PolicyDecision,
    Risk,
    evaluate,
    is_known_command,
    validate_argv,
)
from tend.execution.policy.argv import command_name
from tend.execution.policy.registry import REGISTRY
from tend.execution.policy.shell_lexer import Lexer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words that are not program names: shell reserved words and other tokens a shell reads
# differently from execve() (they only appear as argv[0] of commands that cannot run anyway).
SHELL_WORDS = {
    "if", "then", "elif", "else", "fi", "do", "done", "while", "until", "for", "select", "case",
    "esac", "in", "function", "time", "coproc", "!", "{", "}", "[[", "]]", "((",
}  # fmt: skip

VOCABULARY = [
    *sorted(REGISTRY),
    "-rf", "-r", "-f", "-l", "-c", "-e", "-n", "-i", "-u", "-p", "-s", "-o", "-x", "--",
    "--help", "--version", "--vacuum-size=1G", "-exec", "{}", ";", "+", "/", "/*", "/etc",
    "/etc/shadow", "/etc/passwd", "/dev/sda", "/dev/sda1", "/tmp/x", "~", "..", ".", "*",
    "of=/dev/sda", "if=/dev/zero", "status", "restart", "list", "install", "show", "add", "del",
    "rm -rf /", "cat /etc/shadow", "ls; reboot", "$(id)", "`id`", "a && b", "x | y", "> /dev/sda",
    ":(){ :|:& };:", "root", "nginx", "5", "19", "LANG=C", "PATH=/tmp", "http://x", "@/etc/shadow",
]  # fmt: skip

SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\x00\n\r", blacklist_categories=["Cs"]),
    max_size=24,
)
ARG = st.one_of(st.sampled_from(VOCABULARY), SAFE_TEXT)
PROGRAM = st.one_of(
    st.sampled_from(sorted(REGISTRY)),
    st.sampled_from(["/usr/bin/rm", "./rm", "//bin///rm", "/usr/bin/../bin/cat", "python3.11"]),
    st.from_regex(r"[A-Za-z0-9_.+/][A-Za-z0-9_.+/-]{0,15}", fullmatch=True),
)


@st.composite
def programs(draw: st.DrawFn) -> str:
    """A program name as argv[0]: not an option, an assignment or a shell keyword."""
    name = draw(PROGRAM)
    assume(name not in SHELL_WORDS and "=" not in name and not name.startswith("-"))
    return name


ARGVS = st.builds(lambda head, tail: [head, *tail], programs(), st.lists(ARG, max_size=6))


def check(decision: PolicyDecision) -> PolicyDecision:
    assert isinstance(decision, PolicyDecision)
    assert decision.reason.strip()
    assert decision.command
    assert "failed to analyse" not in decision.reason, "the engine hit an internal error"
    return decision


@SETTINGS
@given(st.lists(ARG, min_size=1, max_size=8))
def test_evaluate_never_raises_on_valid_argv(argv: list[str]) -> None:
    try:
        validate_argv(argv)
    except InvalidArgvError:
        assert not argv[0]
        with pytest.raises(InvalidArgvError):
            evaluate(argv)
        return
    check(evaluate(argv))


@SETTINGS
@given(ARGVS)
def test_evaluate_never_raises_on_command_lines(argv: list[str]) -> None:
    decision = check(evaluate(argv))
    assert decision.risk in set(Risk)


@SETTINGS
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.+-]{0,20}", fullmatch=True), st.lists(ARG, max_size=5))
def test_unknown_commands_are_never_read(name: str, args: list[str]) -> None:
    assume(not is_known_command(command_name(name)))
    assert evaluate([name, *args]).risk is not Risk.READ
    assert evaluate([f"/opt/bin/{name}", *args]).risk is not Risk.READ


WRAPPERS = [
    pytest.param(lambda argv: ["sudo", *argv], id="sudo"),
    pytest.param(lambda argv: ["sudo", "-u", "root", *argv], id="sudo-u"),
    pytest.param(lambda argv: ["env", *argv], id="env"),
    pytest.param(lambda argv: ["nohup", *argv], id="nohup"),
    pytest.param(lambda argv: ["timeout", "5", *argv], id="timeout"),
    pytest.param(lambda argv: ["nice", "-n", "5", *argv], id="nice"),
    pytest.param(lambda argv: ["sh", "-c", shlex.join(argv)], id="sh-c"),
    pytest.param(lambda argv: ["bash", "-c", shlex.join(argv)], id="bash-c"),
    pytest.param(lambda argv: ["xargs", *argv], id="xargs"),
]


@pytest.mark.parametrize("wrap", WRAPPERS)
@SETTINGS
@given(argv=ARGVS)
def test_wrapping_never_lowers_the_risk(wrap: object, argv: list[str]) -> None:
    assert callable(wrap)
    wrapped = wrap(argv)
    try:
        validate_argv(wrapped)
    except InvalidArgvError:
        return
    assert evaluate(wrapped).risk >= evaluate(argv).risk


@SETTINGS
@given(
    st.lists(ARG, max_size=5),
    st.sampled_from(["\n", "\x00", "\r", "a\nb", "x\x00", "\r\n"]),
    st.data(),
)
def test_nul_and_newlines_are_refused(args: list[str], bad: str, data: st.DataObject) -> None:
    argv = ["ls", *args]
    position = data.draw(st.integers(min_value=0, max_value=len(argv)))
    argv.insert(position, bad if position else bad + "ls")
    with pytest.raises(InvalidArgvError):
        evaluate(argv)
    with pytest.raises(InvalidArgvError):
        evaluate(["sh", "-c", shlex.join(argv)])


@SETTINGS
@given(st.lists(SAFE_TEXT, min_size=1, max_size=8))
def test_shell_lexer_reads_back_shlex_join(argv: list[str]) -> None:
    tokens = Lexer(shlex.join(argv)).run()
    assert [token.value for token in tokens] == argv
    assert all(token.kind == "word" for token in tokens)


@SETTINGS
@given(ARGVS)
def test_evaluation_is_deterministic(argv: list[str]) -> None:
    assert evaluate(argv) == evaluate(argv)


def test_large_inputs_are_fast() -> None:
    script = "; ".join(["ps aux | grep -v grep | wc -l"] * 1500)
    argvs = [
        ["sh", "-c", script[: 60 * 1024]],
        ["echo", *(["/var/log/syslog"] * 3000)],
        ["sh", "-c", "$(" * 2000 + "ls" + ")" * 2000],
        ["sh", "-c", "echo " + "${a:-" * 500 + "x" + "}" * 500],
    ]
    for argv in argvs:
        start = time.perf_counter()
        decision = evaluate(argv)
        assert time.perf_counter() - start < 2.0
        assert decision.reason
    simple = ["systemctl", "status", "nginx"]
    start = time.perf_counter()
    for _ in range(1000):
        evaluate(simple)
    assert (time.perf_counter() - start) / 1000 < 0.002
