"""Configurable policy rules, loaded from a YAML file (see ``example-rules.yaml``).

A rule applies to a request when its ``match`` selects the host (any of ``tags``) and the caller
(any of ``roles``); an empty or missing selector matches everything. Actions:

* ``read_only: true`` -- every ``change`` on matching hosts becomes ``forbidden``;
* ``deny`` -- argv patterns that become ``forbidden``;
* ``require_approval`` -- argv patterns that are at least ``change``;
* ``allow`` -- argv patterns that turn a built-in ``change`` into ``read``. An allow never lowers
  ``forbidden``, and loses to ``deny``, ``read_only`` and ``require_approval``.

An argv pattern is a list of tokens matched one by one with :func:`fnmatch.fnmatchcase` against
the *effective* argv (wrappers such as ``sudo`` removed, ``argv[0]`` reduced to its basename).
The pattern must cover the whole argv, except that a final ``"..."`` matches any remaining
arguments, including none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tend.execution.policy.argv import command_name
from tend.execution.policy.model import Risk

REST = "..."
"""A final pattern token matching any remaining arguments (including none)."""


class PolicyRulesError(ValueError):
    """A rules file cannot be read or does not follow the rules format."""


def _check_pattern(pattern: list[str]) -> list[str]:
    if not pattern:
        raise ValueError("an argv pattern must not be empty")
    if any(not token for token in pattern):
        raise ValueError(f"argv pattern {pattern!r} has an empty token")
    if REST in pattern[:-1]:
        raise ValueError(f"argv pattern {pattern!r} may only use '...' as its last token")
    if pattern[0] == REST:
        raise ValueError(f"argv pattern {pattern!r} must start with a command")
    return [command_name(pattern[0]), *pattern[1:]]


def pattern_matches(pattern: Sequence[str], argv: Sequence[str]) -> bool:
    """Whether an argv pattern matches an effective argv.

    Args:
        pattern: Tokens matched with :func:`fnmatch.fnmatchcase`; a final ``"..."`` matches any
            remaining arguments.
        argv: The effective argv (``argv[0]`` is normalised to its basename here).

    Returns:
        ``True`` when every token matches and the pattern covers the whole argv.
    """
    if not argv:
        return False
    effective = [command_name(argv[0]), *argv[1:]]
    if pattern and pattern[-1] == REST:
        head = pattern[:-1]
        if len(effective) < len(head):
            return False
    else:
        head = pattern
        if len(effective) != len(head):
            return False
    return all(fnmatchcase(arg, token) for arg, token in zip(effective, head, strict=False))


class RuleMatch(BaseModel):
    """Which requests a rule applies to: any of ``tags`` and any of ``roles`` (empty: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)

    def selects(self, role: str, host_tags: Collection[str]) -> bool:
        """Whether the rule applies to ``role`` acting on a host with ``host_tags``."""
        tags_ok = not self.tags or any(tag in host_tags for tag in self.tags)
        return tags_ok and (not self.roles or role in self.roles)


class PolicyRule(BaseModel):
    """One configured rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    description: str | None = None
    match: RuleMatch = Field(default_factory=RuleMatch)
    read_only: bool = False
    allow: list[list[str]] = Field(default_factory=list)
    deny: list[list[str]] = Field(default_factory=list)
    require_approval: list[list[str]] = Field(default_factory=list)

    @field_validator("allow", "deny", "require_approval", mode="before")
    @classmethod
    def _patterns_are_lists(cls, value: object) -> object:
        if isinstance(value, list) and any(isinstance(item, str) for item in value):
            raise ValueError(
                "each pattern must be a list of tokens, e.g. [systemctl, restart, nginx]"
            )
        return value

    @field_validator("allow", "deny", "require_approval")
    @classmethod
    def _valid_patterns(cls, value: list[list[str]]) -> list[list[str]]:
        return [_check_pattern(pattern) for pattern in value]

    @model_validator(mode="after")
    def _has_action(self) -> PolicyRule:
        if not (self.read_only or self.allow or self.deny or self.require_approval):
            raise ValueError("a rule needs an action: read_only, allow, deny or require_approval")
        return self

    def label(self, index: int) -> str:
        """The rule's id, or ``rules[INDEX]`` when it has none."""
        return self.id or f"rules[{index}]"


class PolicyRules(BaseModel):
    """A set of configured rules (the content of a rules file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[PolicyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicyRules:
        ids = [rule.id for rule in self.rules if rule.id is not None]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(duplicates)}")
        return self

    def applicable(self, role: str, host_tags: Collection[str]) -> list[tuple[str, PolicyRule]]:
        """The rules that apply to ``role`` on a host with ``host_tags``, with their labels."""
        return [
            (rule.label(index), rule)
            for index, rule in enumerate(self.rules)
            if rule.match.selects(role, host_tags)
        ]


class Adjustment(BaseModel):
    """The effect of the applicable rules on one finding."""

    model_config = ConfigDict(frozen=True)

    risk: Risk
    rule: str | None = None
    note: str | None = None


def adjust(
    risk: Risk, argv: Sequence[str] | None, applicable: Sequence[tuple[str, PolicyRule]]
) -> Adjustment:
    """Apply rules to one built-in verdict.

    Args:
        risk: The built-in risk.
        argv: The effective argv judged, or ``None`` for structural findings (which only
            ``read_only`` affects).
        applicable: Rules selected for this request, with their labels.

    Returns:
        The adjusted risk and the rule responsible, if any.
    """

    def first(kind: str) -> str | None:
        if argv is None:
            return None
        for label, rule in applicable:
            if any(pattern_matches(pattern, argv) for pattern in getattr(rule, kind)):
                return label
        return None

    denied = first("deny")
    if denied is not None:
        return Adjustment(risk=Risk.FORBIDDEN, rule=denied, note=f"rule {denied} denies it")
    if risk is Risk.FORBIDDEN:
        return Adjustment(risk=risk)
    read_only = next((label for label, rule in applicable if rule.read_only), None)
    if risk is Risk.CHANGE and read_only is not None:
        note = f"rule {read_only} makes this host read-only"
        return Adjustment(risk=Risk.FORBIDDEN, rule=read_only, note=note)
    approval = first("require_approval")
    if approval is not None:
        note = f"rule {approval} requires approval"
        return Adjustment(risk=Risk.CHANGE, rule=approval if risk is Risk.READ else None, note=note)
    allowed = first("allow") if risk is Risk.CHANGE else None
    if allowed is not None:
        return Adjustment(risk=Risk.READ, rule=allowed, note=f"rule {allowed} allows it")
    return Adjustment(risk=risk)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_rules(text: str, source: str = "<string>") -> PolicyRules:
    """Parse rules from YAML text.

    Args:
        text: The YAML document.
        source: Where the text comes from, for error messages.

    Returns:
        The rules; an empty document gives no rules.

    Raises:
        PolicyRulesError: The text is not valid YAML or does not follow the rules format.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyRulesError(f"{source} is not valid YAML: {error}") from None
    if data is None:
        return PolicyRules()
    if not isinstance(data, dict):
        raise PolicyRulesError(f"{source} must hold a mapping with a 'rules' list")
    try:
        return PolicyRules.model_validate(data)
    except ValidationError as error:
        raise PolicyRulesError(f"{source} is not a valid rules file: {_describe(error)}") from None


def load_rules(path: Path) -> PolicyRules:
    """Load rules from a YAML file.

    Args:
        path: The rules file.

    Returns:
        The rules.

    Raises:
        PolicyRulesError: The file cannot be read, is not valid YAML or does not follow the
            rules format; the message names the file and the offending entry.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyRulesError(f"cannot read the rules file {path}: {error}") from None
    return parse_rules(text, str(path))
