"""Tests of configurable policy rules: loading, matching and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

import tend.execution.policy as policy_package
from tend.execution.policy import (
    PolicyRules,
    PolicyRulesError,
    Risk,
    evaluate,
    load_rules,
    parse_rules,
    pattern_matches,
)

EXAMPLE = Path(policy_package.__file__).parent / "example-rules.yaml"


def rules(text: str) -> PolicyRules:
    return parse_rules(text, "test.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- loading --------------------------------------------------------------------------------


def test_example_file_loads() -> None:
    loaded = load_rules(EXAMPLE)
    ids = [rule.id for rule in loaded.rules]
    assert "prod-db-read-only" in ids
    assert "web-nginx-restart" in ids


def test_load_valid_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nrules:\n  - id: r1\n    match: {tags: [web]}\n    allow: [[ls, '...']]\n",
    )
    loaded = load_rules(path)
    assert loaded.rules[0].id == "r1"
    assert loaded.rules[0].allow == [["ls", "..."]]


def test_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "")).rules == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyRulesError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("rules: [\n", "not valid YAML", id="invalid-yaml"),
        pytest.param("- just\n- a list\n", "mapping", id="not-a-mapping"),
        pytest.param("rulez: []\n", "rulez", id="unknown-top-level-key"),
        pytest.param("rules:\n  - read_only: true\n    colour: red\n", "colour", id="unknown-key"),
        pytest.param(
            "rules:\n  - match: {tags: [a], hosts: [b]}\n    read_only: true\n",
            "hosts",
            id="unknown-match-key",
        ),
        pytest.param("rules:\n  - id: x\n", "needs an action", id="no-action"),
        pytest.param("rules:\n  - allow: [systemctl, restart]\n", "list of tokens", id="flat"),
        pytest.param("rules:\n  - allow: [[]]\n", "must not be empty", id="empty-pattern"),
        pytest.param("rules:\n  - deny: [[ls, '...', x]]\n", "last token", id="dots-inside"),
        pytest.param("rules:\n  - deny: [['...']]\n", "start with a command", id="dots-only"),
        pytest.param(
            "rules:\n  - {id: a, read_only: true}\n  - {id: a, read_only: true}\n",
            "unique",
            id="duplicate-ids",
        ),
        pytest.param("version: 2\nrules: []\n", "version", id="bad-version"),
        pytest.param("rules:\n  - read_only: maybe\n", "read_only", id="bad-bool"),
    ],
)
def test_invalid_files_raise(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyRulesError, match=message) as info:
        load_rules(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


# --- pattern semantics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "argv", "matches"),
    [
        (["ls"], ["ls"], True),
        (["ls"], ["ls", "-l"], False),
        (["ls", "..."], ["ls"], True),
        (["ls", "..."], ["ls", "-l", "/tmp"], True),
        (["ls", "-l", "..."], ["ls"], False),
        (["systemctl", "restart", "nginx*"], ["systemctl", "restart", "nginx@a"], True),
        (["systemctl", "restart", "nginx*"], ["systemctl", "restart", "sshd"], False),
        (["systemctl", "restart", "nginx"], ["/usr/bin/systemctl", "restart", "nginx"], True),
        (["systemctl", "restart", "nginx"], ["systemctl", "restart", "nginx", "x"], False),
        (["cat", "/var/log/?.log"], ["cat", "/var/log/a.log"], True),
        (["cat", "[ab]"], ["cat", "c"], False),
        (["Ls"], ["ls"], False),
    ],
)
def test_pattern_matches(pattern: list[str], argv: list[str], matches: bool) -> None:
    assert pattern_matches(pattern, argv) is matches


# --- effects ---------------------------------------------------------------------------------

READ_ONLY = rules("rules:\n  - id: ro\n    match: {tags: [prod]}\n    read_only: true\n")


def test_read_only_turns_change_into_forbidden() -> None:
    decision = evaluate(["systemctl", "restart", "nginx"], host_tags={"prod"}, rules=READ_ONLY)
    assert decision.risk is Risk.FORBIDDEN
    assert decision.rule == "ro"
    assert "read-only" in decision.reason


def test_read_only_keeps_reads_and_other_hosts() -> None:
    assert evaluate(["uptime"], host_tags={"prod"}, rules=READ_ONLY).risk is Risk.READ
    other = evaluate(["systemctl", "restart", "nginx"], host_tags={"dev"}, rules=READ_ONLY)
    assert other.risk is Risk.CHANGE
    assert other.rule is None


def test_read_only_applies_to_structural_changes() -> None:
    decision = evaluate(["sh", "-c", "echo $(id)"], host_tags=["prod"], rules=READ_ONLY)
    assert decision.risk is Risk.FORBIDDEN


ALLOW = rules(
    """
rules:
  - id: restart-nginx
    match: {tags: [web]}
    allow:
      - [systemctl, restart, nginx]
      - [healthcheck, "..."]
      - [rm, "..."]
"""
)


def test_allow_lowers_change_to_read() -> None:
    decision = evaluate(["systemctl", "restart", "nginx"], host_tags={"web"}, rules=ALLOW)
    assert decision.risk is Risk.READ
    assert decision.rule == "restart-nginx"


def test_allow_matches_the_effective_argv_through_wrappers() -> None:
    argv = ["sudo", "timeout", "30", "/bin/systemctl", "restart", "nginx"]
    decision = evaluate(argv, host_tags={"web"}, rules=ALLOW)
    assert decision.risk is Risk.READ
    assert decision.wrappers == ["sudo", "timeout"]


def test_allow_dots_pattern_and_unknown_commands() -> None:
    assert evaluate(["healthcheck"], host_tags={"web"}, rules=ALLOW).risk is Risk.READ
    assert evaluate(["healthcheck", "-v", "x"], host_tags={"web"}, rules=ALLOW).risk is Risk.READ
    assert evaluate(["healthcheck"], host_tags={"db"}, rules=ALLOW).risk is Risk.CHANGE


def test_allow_never_lowers_forbidden() -> None:
    decision = evaluate(["rm", "-rf", "/"], host_tags={"web"}, rules=ALLOW)
    assert decision.risk is Risk.FORBIDDEN
    assert decision.rule is None
    assert evaluate(["rm", "-rf", "/tmp/x"], host_tags={"web"}, rules=ALLOW).risk is Risk.READ


def test_allow_does_not_lower_other_parts_of_a_shell_string() -> None:
    argv = ["sh", "-c", "systemctl restart nginx; reboot"]
    assert evaluate(argv, host_tags={"web"}, rules=ALLOW).risk is Risk.CHANGE
    argv = ["sh", "-c", "systemctl restart nginx > /tmp/out"]
    assert evaluate(argv, host_tags={"web"}, rules=ALLOW).risk is Risk.CHANGE
    argv = ["sh", "-c", "systemctl restart nginx && uptime"]
    assert evaluate(argv, host_tags={"web"}, rules=ALLOW).risk is Risk.READ


def test_allow_does_not_lower_wrapper_floors() -> None:
    permissive = rules("rules:\n  - allow: [[grep, '...']]\n")
    assert evaluate(["xargs", "grep", "x"], rules=permissive).risk is Risk.CHANGE


DENY = rules(
    """
rules:
  - id: no-stop
    deny:
      - [systemctl, stop, "postgresql*", "..."]
  - id: no-cat
    match: {roles: [viewer]}
    deny:
      - [cat, "..."]
"""
)


def test_deny_makes_forbidden() -> None:
    decision = evaluate(["sudo", "systemctl", "stop", "postgresql@15-main"], rules=DENY)
    assert decision.risk is Risk.FORBIDDEN
    assert decision.rule == "no-stop"
    assert "denies" in decision.reason


def test_deny_reaches_inside_shell_strings() -> None:
    decision = evaluate(["bash", "-c", "uptime; systemctl stop postgresql"], rules=DENY)
    assert decision.risk is Risk.FORBIDDEN


def test_role_matching() -> None:
    assert evaluate(["cat", "/etc/hosts"], role="viewer", rules=DENY).risk is Risk.FORBIDDEN
    assert evaluate(["cat", "/etc/hosts"], role="operator", rules=DENY).risk is Risk.READ
    assert evaluate(["cat", "/etc/hosts"], rules=DENY).risk is Risk.READ


def test_tags_and_roles_must_both_match() -> None:
    both = rules("rules:\n  - match: {tags: [web], roles: [viewer]}\n    deny: [[ls]]\n")
    assert evaluate(["ls"], role="viewer", host_tags={"web"}, rules=both).risk is Risk.FORBIDDEN
    assert evaluate(["ls"], role="viewer", host_tags={"db"}, rules=both).risk is Risk.READ
    assert evaluate(["ls"], role="admin", host_tags={"web"}, rules=both).risk is Risk.READ


def test_tags_are_any_of() -> None:
    any_tag = rules("rules:\n  - match: {tags: [a, b]}\n    read_only: true\n")
    argv = ["systemctl", "restart", "x"]
    assert evaluate(argv, host_tags={"b", "z"}, rules=any_tag).risk is Risk.FORBIDDEN
    assert evaluate(argv, host_tags={"z"}, rules=any_tag).risk is Risk.CHANGE


APPROVAL = rules(
    """
rules:
  - id: logs-need-approval
    require_approval:
      - [journalctl, "..."]
  - id: allow-too
    allow:
      - [journalctl, "..."]
      - [systemctl, restart, nginx]
"""
)


def test_require_approval_raises_read_to_change() -> None:
    decision = evaluate(["journalctl", "-u", "nginx"], rules=APPROVAL)
    assert decision.risk is Risk.CHANGE
    assert decision.rule == "logs-need-approval"


def test_require_approval_wins_over_allow() -> None:
    assert evaluate(["journalctl", "--vacuum-size=1G"], rules=APPROVAL).risk is Risk.CHANGE


def test_deny_and_read_only_win_over_allow() -> None:
    both = rules(
        """
rules:
  - {id: ok, allow: [[systemctl, restart, nginx]]}
  - {id: ro, match: {tags: [prod]}, read_only: true}
  - {id: deny-locked, match: {tags: [locked]}, deny: [[systemctl, restart, nginx]]}
"""
    )
    argv = ["systemctl", "restart", "nginx"]
    assert evaluate(argv, rules=both).risk is Risk.READ
    assert evaluate(argv, host_tags={"prod"}, rules=both).risk is Risk.FORBIDDEN
    assert evaluate(argv, host_tags={"prod"}, rules=both).rule == "ro"
    assert evaluate(argv, host_tags={"locked"}, rules=both).rule == "deny-locked"


def test_rule_without_id_is_labelled_by_position() -> None:
    unnamed = rules("rules:\n  - {id: a, read_only: true, match: {tags: [x]}}\n  - deny: [[w]]\n")
    assert evaluate(["w"], rules=unnamed).rule == "rules[1]"


def test_example_rules_behave_as_documented() -> None:
    example = load_rules(EXAMPLE)
    restart = ["systemctl", "restart", "nginx"]
    assert evaluate(restart, host_tags={"web"}, rules=example).risk is Risk.READ
    assert evaluate(restart, host_tags={"web", "prod-db"}, rules=example).risk is Risk.FORBIDDEN
    assert evaluate(["healthcheck", "--json"], rules=example).risk is Risk.READ
    assert evaluate(["systemctl", "stop", "postgresql"], rules=example).risk is Risk.FORBIDDEN
    viewer = evaluate(["journalctl", "-n", "5"], role="viewer", rules=example)
    assert viewer.risk is Risk.CHANGE
