"""OpenSSH client configurations read into host drafts with first-match-wins semantics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tend.hosts.importers.common import HostDraft, InventoryError, is_template, summarise

SSH_CONFIG_TAG = "ssh-config"
_KEYWORD = re.compile(r"^([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*)?(.*)$")
_TOKEN = re.compile(r"%(.?)|\$\{")
_WILDCARDS = frozenset("*?!")
# keyword -> HostCreate field
_FIELDS = {"hostname": "address", "port": "port", "user": "user", "proxyjump": "proxy_jump"}
_SPELLING = {
    "hostname": "HostName",
    "port": "Port",
    "user": "User",
    "proxyjump": "ProxyJump",
    "identityfile": "IdentityFile",
}


@dataclass
class _Block:
    """Options under one ``Host`` line (``patterns`` None: before any, applying to all)."""

    patterns: list[str] | None
    options: list[tuple[str, str, int]] = field(default_factory=list)

    def matches(self, alias: str) -> bool:
        if self.patterns is None:
            return True
        hit = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if _glob(pattern[1:] if negated else pattern, alias):
                if negated:
                    return False
                hit = True
        return hit


def _glob(pattern: str, name: str) -> bool:
    """OpenSSH pattern matching: ``*`` any run, ``?`` one character, case-insensitive."""
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
    )
    return re.fullmatch(regex, name.lower(), re.DOTALL) is not None


def split_args(text: str) -> list[str]:
    """Split an option's arguments: whitespace-separated, quotes group, ``#`` starts a comment.

    Args:
        text: What follows the keyword.

    Returns:
        The arguments.

    Raises:
        ValueError: On an unterminated quote.
    """
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] == "#":
            break
        chars: list[str] = []
        quote = ""
        while i < n and (quote or not text[i].isspace()):
            char = text[i]
            if char == "\\" and i + 1 < n and text[i + 1] in "\\\"' ":
                i += 1
                chars.append(text[i])
            elif quote and char == quote:
                quote = ""
            elif not quote and char in "\"'":
                quote = char
            else:
                chars.append(char)
            i += 1
        if quote:
            msg = "unterminated quote"
            raise ValueError(msg)
        args.append("".join(chars))
    return args


def _read(
    text: str, filename: str | None, warnings: list[str]
) -> tuple[list[_Block], dict[str, int]]:
    """Split the file into blocks and collect concrete aliases with the line naming them."""
    blocks = [_Block(None)]
    aliases: dict[str, int] = {}
    ignored: dict[str, str] = {}
    in_match = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match is None:
            msg = f"expected 'Keyword value', got {line!r}"
            raise InventoryError(msg, filename=filename, line=number)
        keyword, lower = match.group(1), match.group(1).lower()
        try:
            args = split_args(match.group(2))
        except ValueError as exc:
            raise InventoryError(f"{keyword}: {exc}", filename=filename, line=number) from None
        if not args:
            raise InventoryError(f"{keyword} needs a value", filename=filename, line=number)
        if lower == "host":
            in_match = False
            blocks.append(_Block(args))
            for pattern in args:
                if not _WILDCARDS & set(pattern):
                    aliases.setdefault(pattern, number)
        elif lower == "match":
            in_match = True
            warnings.append(
                f"Skipped the Match block on line {number}: "
                "conditional Match blocks are not imported."
            )
        elif in_match:
            continue
        elif lower == "include":
            warnings.append(
                f"Did not follow Include {' '.join(args)!r} on line {number}: import those files "
                "separately."
            )
        elif lower in _SPELLING:
            if len(args) != 1:
                msg = f"{keyword} takes one value, got {len(args)}"
                raise InventoryError(msg, filename=filename, line=number)
            blocks[-1].options.append((lower, args[0], number))
        else:
            ignored.setdefault(lower, keyword)
    if ignored:
        warnings.append(
            "Ignored ssh_config keyword(s) that tend does not use: "
            f"{summarise(sorted(ignored.values(), key=str.lower))}."
        )
    return blocks, aliases


def _has_token(value: str) -> bool:
    return any(m.group(0) != "%%" for m in _TOKEN.finditer(value))


def _expand_hostname(value: str, alias: str) -> tuple[str, list[str]]:
    """Expand ``%h`` (the alias) and ``%%`` in a HostName; report other tokens."""
    unknown: list[str] = []

    def token(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(0) == "%h":
            return alias
        unknown.append(match.group(0))
        return match.group(0)

    return _TOKEN.sub(token, value), unknown


def _proxy_jump(value: str) -> str | None:
    """ProxyJump as tend stores it: ``none`` is None and ``ssh://`` URIs become plain hops."""
    if value.lower() == "none":
        return None
    return ",".join(hop.strip().removeprefix("ssh://").rstrip("/") for hop in value.split(","))


def parse_ssh_config(text: str, filename: str | None, warnings: list[str]) -> list[HostDraft]:
    """Read an OpenSSH client configuration into host drafts.

    Every concrete ``Host`` alias becomes a host; for each keyword the first value found in
    file order among the blocks matching the alias wins, as in ssh(1).

    Args:
        text: The file's content.
        filename: For error messages.
        warnings: Receives what was ignored or skipped.

    Returns:
        The drafted hosts, in order of first appearance.
    """
    blocks, aliases = _read(text, filename, warnings)
    skipped_identities: dict[int, tuple[str, list[str]]] = {}
    drafts: list[HostDraft] = []
    for alias, line in aliases.items():
        draft = HostDraft(source=alias, line=line, tags={SSH_CONFIG_TAG})
        draft.fields["address"] = alias
        draft.origins["address"] = ("the Host alias", line)
        found: dict[str, tuple[str, int]] = {}
        for block in blocks:
            if not block.matches(alias):
                continue
            for keyword, value, number in block.options:
                if keyword == "identityfile" and "identityfile" not in found and _has_token(value):
                    skipped_identities.setdefault(number, (value, []))[1].append(alias)
                elif keyword not in found:
                    found[keyword] = (value, number)
        if not _apply(draft, found, alias, warnings):
            continue
        drafts.append(draft)
    for number, (value, users) in skipped_identities.items():
        warnings.append(
            f"Skipped IdentityFile {value!r} on line {number} for {summarise(users)}: "
            "tokens such as %d or ${VAR} are not expanded."
        )
    return drafts


def _apply(
    draft: HostDraft, found: dict[str, tuple[str, int]], alias: str, warnings: list[str]
) -> bool:
    """Fill a draft from the winning values; False when the host must be skipped."""
    for keyword, (value, number) in found.items():
        fld = "key_file" if keyword == "identityfile" else _FIELDS[keyword]
        stored: str | None = value
        if keyword == "hostname":
            stored, unknown = _expand_hostname(value, alias)
            if unknown:
                warnings.append(
                    f"Skipped host {alias!r}: its HostName {value!r} (line {number}) uses "
                    f"{', '.join(unknown)}, which tend cannot expand."
                )
                return False
        elif keyword == "proxyjump":
            stored = _proxy_jump(value)
        if is_template(value):
            draft.templated.add(fld)
            warnings.append(
                f"{_SPELLING[keyword]} {value!r} of host {alias!r} (line {number}) looks like "
                "an unrendered Jinja template; it is taken literally."
            )
        draft.fields[fld] = stored
        draft.origins[fld] = (_SPELLING[keyword], number)
    return True
