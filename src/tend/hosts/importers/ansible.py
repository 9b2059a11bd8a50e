"""Ansible inventories, INI and YAML, read into host drafts without evaluating anything."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import yaml

from tend.hosts.importers.common import (
    HostDraft,
    InventoryError,
    Transport,
    is_template,
    summarise,
    tag_from,
)

MAX_EXPANSION = 10_000
MAX_GROUP_VISITS = 100_000

# Variable name -> the name it is an alias of (the modern name wins within one level).
_ALIASES = {
    "ansible_ssh_host": "ansible_host",
    "ansible_ssh_port": "ansible_port",
    "ansible_ssh_user": "ansible_user",
    "ansible_private_key_file": "ansible_ssh_private_key_file",
}
_FIELDS = {
    "ansible_host": "address",
    "ansible_port": "port",
    "ansible_user": "user",
    "ansible_ssh_private_key_file": "key_file",
}
_CONNECTION = "ansible_connection"
_SSH_CONNECTIONS = frozenset({"ssh", "paramiko", "smart"})
PASSWORD_VARS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_pass",
        "ansible_become_password",
        "ansible_sudo_pass",
        "ansible_su_pass",
    }
)
_USED_VARS = frozenset({*_ALIASES, *_FIELDS, _CONNECTION})
_IMPLICIT = ("all", "ungrouped")
_SECTION = re.compile(r"^\[([^\]\s:]+)(?::([^\]\s]*))?\]\s*(?:[#;].*)?$")
_RANGE = re.compile(r"\[([^\]:\[]*):([^\]:\[]*)(?::([^\]:\[]*))?\]")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]{1,18}")
_LETTER = re.compile(r"[A-Za-z]")

# A variable's value and the line it was set on (None for YAML).
Vars = dict[str, tuple[object, int | None]]


@dataclass
class _Group:
    name: str
    vars: Vars = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass
class _Host:
    name: str
    line: int | None
    vars: Vars = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


@dataclass
class _Inventory:
    groups: dict[str, _Group] = field(default_factory=dict)
    hosts: dict[str, _Host] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def add_host(self, name: str, group: str, line: int | None, host_vars: Vars) -> None:
        host = self.hosts.setdefault(name, _Host(name, line))
        host.vars.update(host_vars)
        self.group(group)
        if group not in host.groups:
            host.groups.append(group)

    def add_child(self, parent: str, child: str) -> None:
        self.group(child)
        children = self.group(parent).children
        if child not in children:
            children.append(child)


def expand_pattern(pattern: str, filename: str | None, line: int | None) -> list[str]:
    """Expand ``[01:03]`` / ``[a:c]`` ranges (optionally ``[start:end:step]``) in a host name.

    Args:
        pattern: The host pattern.
        filename: For error messages.
        line: For error messages.

    Returns:
        The host names, in order.

    Raises:
        InventoryError: On a malformed range or one expanding past 10,000 hosts.
    """
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    start, end, step_text = match.group(1), match.group(2), match.group(3) or "1"
    bad = f"host pattern {pattern!r}: invalid range {match.group(0)!r}"
    if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
        raise InventoryError(
            f"{bad}: the step must be a positive number", filename=filename, line=line
        )
    step = int(step_text)
    numeric = bool(_NUMBER.fullmatch(start) and _NUMBER.fullmatch(end))
    width = len(start) if start.startswith("0") else 0
    if numeric:
        first, last = int(start), int(end)
    elif _LETTER.fullmatch(start) and _LETTER.fullmatch(end) and start.islower() == end.islower():
        first, last = ord(start), ord(end)
    else:
        msg = f"{bad}: use numbers ([01:10]) or single letters ([a:f])"
        raise InventoryError(msg, filename=filename, line=line)
    if first > last:
        raise InventoryError(f"{bad}: the start is after the end", filename=filename, line=line)
    count = (last - first) // step + 1
    tails = expand_pattern(pattern[match.end() :], filename, line)
    if count * len(tails) > MAX_EXPANSION:
        msg = f"host pattern {pattern!r} expands to more than {MAX_EXPANSION} hosts"
        raise InventoryError(msg, filename=filename, line=line)
    head = pattern[: match.start()]
    items = [str(i).zfill(width) if numeric else chr(i) for i in range(first, last + 1, step)]
    return [head + item + tail for item in items for tail in tails]


def _split_port(pattern: str, filename: str | None, line: int | None) -> tuple[str, str | None]:
    """Split ``host:port`` (a colon outside range brackets; IPv6 addresses stay whole)."""
    depth, colons = 0, []
    for i, char in enumerate(pattern):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == ":" and depth == 0:
            colons.append(i)
    if len(colons) != 1:
        return pattern, None
    host, port = pattern[: colons[0]], pattern[colons[0] + 1 :]
    if not _DIGITS.fullmatch(port):
        msg = f"host {host!r}: port {port!r} is not a number"
        raise InventoryError(msg, filename=filename, line=line)
    return host, port


def _hosts_of(pattern: str, filename: str | None, line: int | None) -> tuple[list[str], Vars]:
    """Expand a host pattern into names, with ``ansible_port`` when it carried a ``:port``."""
    pattern, port = _split_port(pattern, filename, line)
    return expand_pattern(pattern, filename, line), ({"ansible_port": (port, line)} if port else {})


# ---------------------------------------------------------------------------- INI


def _tokens(text: str, filename: str | None, line: int) -> list[str]:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError as exc:
        raise InventoryError(
            f"cannot split {text!r}: {exc}", filename=filename, line=line
        ) from None


def _ini_value(text: str, filename: str | None, line: int) -> str:
    """A vars-section value: a quoted string unquoted, else the text up to a `` #`` comment."""
    if text[:1] in ("'", '"'):
        tokens = _tokens(text, filename, line)
        if len(tokens) == 1:
            return tokens[0]
    return re.sub(r"\s+#.*$", "", text)


def parse_ini(text: str, filename: str | None) -> _Inventory:
    """Read an INI inventory: host, ``:children`` and ``:vars`` sections.

    Args:
        text: The file's content.
        filename: For error messages.

    Returns:
        The groups and hosts.

    Raises:
        InventoryError: On a malformed line, naming its number.
    """
    inv = _Inventory()
    group, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if match is None:
                msg = (
                    f"malformed section header {line!r}; "
                    "expected [group], [group:vars] or [group:children]"
                )
                raise InventoryError(msg, filename=filename, line=number)
            group, kind = match.group(1), match.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                msg = f"unknown section type {kind!r} in {line!r}; expected :vars or :children"
                raise InventoryError(msg, filename=filename, line=number)
            inv.group(group)
        elif kind == "vars":
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key or any(c.isspace() for c in key):
                msg = f"expected key=value in [{group}:vars], got {line!r}"
                raise InventoryError(msg, filename=filename, line=number)
            inv.group(group).vars[key] = (_ini_value(value.strip(), filename, number), number)
        elif kind == "children":
            tokens = _tokens(line, filename, number)
            if len(tokens) != 1:
                msg = f"expected one group name per line in [{group}:children], got {line!r}"
                raise InventoryError(msg, filename=filename, line=number)
            inv.add_child(group, tokens[0])
        else:
            _ini_host(inv, group, _tokens(line, filename, number), filename, number)
    return inv


def _ini_host(
    inv: _Inventory, group: str, tokens: list[str], filename: str | None, line: int
) -> None:
    if not tokens:
        return
    if "=" in tokens[0]:
        msg = f"expected a host name before the variables, got {tokens[0]!r}"
        raise InventoryError(msg, filename=filename, line=line)
    names, host_vars = _hosts_of(tokens[0], filename, line)
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            msg = f"host {tokens[0]!r}: expected key=value, got {token!r}"
            raise InventoryError(msg, filename=filename, line=line)
        host_vars[key] = (value, line)
    for name in names:
        inv.add_host(name, group, line, dict(host_vars))


# ---------------------------------------------------------------------------- YAML


def parse_yaml(text: str, filename: str | None, warnings: list[str]) -> _Inventory:
    """Read a YAML inventory: groups with ``hosts``, ``vars`` and ``children``, nested freely.

    Args:
        text: The file's content.
        filename: For error messages.
        warnings: Receives a warning per unknown group key.

    Returns:
        The groups and hosts.

    Raises:
        InventoryError: When the YAML is malformed (with its line) or not an inventory.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = exc.problem or exc.context or "syntax error"
        raise InventoryError(f"invalid YAML: {detail}", filename=filename, line=line) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise InventoryError(f"invalid YAML: {exc}", filename=filename) from None
    inv = _Inventory()
    if data is None:
        return inv
    if not isinstance(data, dict):
        msg = f"the top level must be a mapping of groups such as 'all:', not {_kind(data)}"
        raise InventoryError(msg, filename=filename, line=1)
    if data.keys() <= {"hosts", "vars", "children"}:
        data = {"all": data}
    walker = _YamlWalker(inv, filename, warnings)
    for name, body in data.items():
        walker.group(str(name), body, None)
    return inv


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


class _YamlWalker:
    def __init__(self, inv: _Inventory, filename: str | None, warnings: list[str]) -> None:
        self.inv = inv
        self.filename = filename
        self.visits = 0
        self.path: list[int] = []
        self.warnings = warnings

    def _fail(self, msg: str) -> InventoryError:
        return InventoryError(msg, filename=self.filename)

    def _mapping(self, value: object, what: str) -> dict[object, object]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(f"{what} must be a mapping, not {_kind(value)}")
        return value

    def group(self, name: str, body: object, parent: str | None) -> None:
        self.visits += 1
        if self.visits > MAX_GROUP_VISITS or id(body) in self.path:
            raise self._fail(f"group {name!r}: the children nest endlessly (a YAML alias loop?)")
        self.inv.group(name)
        if parent is not None:
            self.inv.add_child(parent, name)
        self.path.append(id(body))
        for key, value in self._mapping(body, f"group {name!r}").items():
            if key == "hosts":
                for host, host_vars in self._mapping(value, f"hosts of group {name!r}").items():
                    names, extra = _hosts_of(str(host), self.filename, None)
                    extra.update(self._vars(host_vars, f"variables of host {host!r}"))
                    for each in names:
                        self.inv.add_host(each, name, None, dict(extra))
            elif key == "vars":
                self.inv.group(name).vars.update(self._vars(value, f"vars of group {name!r}"))
            elif key == "children":
                for child, child_body in self._mapping(value, f"children of {name!r}").items():
                    self.group(str(child), child_body, name)
            else:
                self.warnings.append(
                    f"Ignored key {key!r} in group {name!r}: "
                    "only hosts, vars and children are read."
                )
        self.path.pop()

    def _vars(self, value: object, what: str) -> Vars:
        return {str(k): (v, None) for k, v in self._mapping(value, what).items()}


# ---------------------------------------------------------------------------- resolution


def _depths(inv: _Inventory, filename: str | None) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Each group's parents (``all`` when none) and depth below ``all``; refuses cycles."""
    inv.group("all")
    parents: dict[str, set[str]] = {name: set() for name in inv.groups}
    for group in inv.groups.values():
        for child in group.children:
            parents[child].add(group.name)
    for name, above in parents.items():
        if name != "all" and not above:
            above.add("all")
    depth: dict[str, int] = {}
    for start, above in parents.items():
        stack, on_path = [(start, sorted(above))], {start}
        while stack:
            node, pending = stack[-1]
            if pending:
                parent = pending.pop()
                if parent in on_path:
                    msg = f"group {parent!r} is its own descendant through its children"
                    raise InventoryError(msg, filename=filename)
                if parent not in depth:
                    on_path.add(parent)
                    stack.append((parent, sorted(parents[parent])))
            else:
                depth[node] = 1 + max((depth[p] for p in parents[node]), default=-1)
                on_path.discard(node)
                stack.pop()
    return parents, depth


def _merge(effective: dict[str, tuple[object, int | None, str]], layer: Vars) -> None:
    for key, (value, line) in layer.items():
        canonical = _ALIASES.get(key, key)
        if canonical != key and canonical in layer:
            continue
        effective[canonical] = (value, line, key)


def _scalar(value: object) -> object:
    """YAML scalars as text (so that ``yes`` never becomes port 1); other values unchanged."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return str(value)
    return value


def resolve(inv: _Inventory, filename: str | None, warnings: list[str]) -> list[HostDraft]:
    """Apply group membership and variable precedence to draft each host.

    Group variables apply by depth (parents first, children override; ties by name),
    then host variables override them all.

    Args:
        inv: The parsed inventory.
        filename: For error messages.
        warnings: Receives what was ignored or skipped.

    Returns:
        One draft per inventory host, in order of first appearance.
    """
    parents, depth = _depths(inv, filename)
    _warn_vars(inv, warnings)
    bad_tags: set[str] = set()
    drafts: list[HostDraft] = []
    for host in inv.hosts.values():
        direct = [g for g in host.groups if g not in _IMPLICIT] or host.groups
        groups, todo = set(direct), list(direct)
        while todo:
            for parent in parents[todo.pop()]:
                if parent not in groups:
                    groups.add(parent)
                    todo.append(parent)
        effective: dict[str, tuple[object, int | None, str]] = {}
        for name in sorted(groups, key=lambda g: (depth[g], g)):
            _merge(effective, inv.groups[name].vars)
        _merge(effective, host.vars)
        draft = HostDraft(source=host.name, line=host.line)
        draft.fields["address"] = host.name
        draft.origins["address"] = ("the inventory host name", host.line)
        for var, fld in _FIELDS.items():
            if var in effective and effective[var][0] is not None:
                value, line, key = effective[var]
                draft.fields[fld] = _scalar(value)
                draft.origins[fld] = (key, line)
                if is_template(value):
                    draft.templated.add(fld)
        connection = str(_scalar(effective.get(_CONNECTION, ("ssh",))[0])).lower()
        if connection == "local":
            # As in Ansible, a local connection ignores the ssh address, port, user and key.
            draft.fields = {"transport": Transport.LOCAL, "address": "localhost"}
            draft.templated.clear()
        elif connection not in _SSH_CONNECTIONS:
            warnings.append(
                f"Skipped host {host.name!r}: ansible_connection {connection!r} is not supported "
                "(only ssh and local)."
            )
            continue
        for name in groups - set(_IMPLICIT):
            tag = tag_from(name)
            if tag:
                draft.tags.add(tag)
            else:
                bad_tags.add(name)
        drafts.append(draft)
    if bad_tags:
        groups_text = summarise([repr(g) for g in sorted(bad_tags)])
        warnings.append(f"Groups {groups_text} have no usable tag name; not tagged.")
    return drafts


def _warn_vars(inv: _Inventory, warnings: list[str]) -> None:
    """Warn once about passwords, once about ignored variables and per unrendered template."""
    sites = [(f"group {g.name!r}", g.vars) for g in inv.groups.values()]
    sites += [(f"host {h.name!r}", h.vars) for h in inv.hosts.values()]
    password_keys: set[str] = set()
    password_sites: list[str] = []
    ignored: set[str] = set()
    for site, site_vars in sites:
        found = PASSWORD_VARS & site_vars.keys()
        if found:
            password_keys |= found
            password_sites.append(site)
        ignored |= site_vars.keys() - PASSWORD_VARS - _USED_VARS
        for key in sorted(site_vars.keys() & _USED_VARS):
            if is_template(site_vars[key][0]):
                warnings.append(
                    f"Variable {key} of {site} is an unrendered Jinja template "
                    f"{site_vars[key][0]!r}; it is taken literally."
                )
    if password_keys:
        warnings.append(
            f"Passwords are not imported: ignored {', '.join(sorted(password_keys))} "
            f"set on {summarise(password_sites)}; use SSH keys instead."
        )
    if ignored:
        warnings.append(
            f"Ignored {len(ignored)} variable(s) that tend does not use: "
            f"{summarise(sorted(ignored))}."
        )


def parse_ansible(
    text: str, *, yaml_format: bool, filename: str | None, warnings: list[str]
) -> list[HostDraft]:
    """Read an Ansible inventory into host drafts.

    Args:
        text: The file's content.
        yaml_format: YAML rather than INI.
        filename: For error messages.
        warnings: Receives what was ignored or skipped.

    Returns:
        The drafted hosts.
    """
    inv = parse_yaml(text, filename, warnings) if yaml_format else parse_ini(text, filename)
    return resolve(inv, filename, warnings)
