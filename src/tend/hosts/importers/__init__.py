"""Import hosts from an Ansible inventory (INI or YAML) or an OpenSSH client configuration.

Parsing is pure: nothing in the file is executed, rendered or evaluated, no file it names
is read, and passwords are never carried into the result.
"""

from __future__ import annotations

import re
from pathlib import PurePath

import yaml

from tend.hosts.importers.ansible import parse_ansible
from tend.hosts.importers.common import (
    ImportedInventory,
    InventoryError,
    InventoryFormat,
    build_hosts,
    host_name_from,
    tag_from,
)
from tend.hosts.importers.ssh_config import parse_ssh_config

_SSH_LINE = re.compile(r"^\s*(?:host|hostname|match)(?:\s*=\s*|\s+)\S", re.IGNORECASE)
_INI_SECTION = re.compile(r"^\s*\[[^\]\s]+\]\s*(?:[#;].*)?$", re.MULTILINE)
_YAML_START = re.compile(r"^(?:---|[^\s\[#;=:][^\s=]*:(?:\s+\S.*)?\s*)$")
_GROUP_KEYS = frozenset({"hosts", "children", "vars"})


def _significant(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and line[0] not in "#;"]


def _looks_ssh(text: str) -> bool:
    return not _INI_SECTION.search(text) and any(
        _SSH_LINE.match(line) and "ansible_" not in line for line in _significant(text)
    )


def _looks_yaml(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        lines = _significant(text)
        return bool(lines) and _YAML_START.match(lines[0]) is not None
    if not isinstance(data, dict) or not data:
        return False
    return (
        "all" in data
        or data.keys() <= _GROUP_KEYS
        or any(isinstance(body, dict) and body.keys() & _GROUP_KEYS for body in data.values())
    )


def detect_format(text: str, filename: str | None = None) -> InventoryFormat:
    """Guess an inventory's format from its file name, then from its content.

    ``.yml``/``.yaml`` files are YAML inventories; files named ``config`` or ``ssh_config``
    are ssh configurations; ``.ini``/``.cfg`` files are INI inventories unless they hold ssh
    keywords. Otherwise ``[group]`` sections mean INI, ``Host``/``HostName``/``Match`` lines
    mean an ssh configuration and a YAML mapping of groups means YAML; anything else is read
    as INI (a plain list of hosts).

    Args:
        text: The file's content.
        filename: The file's name or path, when known.

    Returns:
        The format.
    """
    if filename:
        name = PurePath(filename).name.lower()
        suffix = PurePath(name).suffix
        if suffix in (".yml", ".yaml"):
            return InventoryFormat.ANSIBLE_YAML
        if name in ("config", "ssh_config"):
            return InventoryFormat.SSH_CONFIG
        if suffix in (".ini", ".cfg"):
            return InventoryFormat.SSH_CONFIG if _looks_ssh(text) else InventoryFormat.ANSIBLE_INI
    if _INI_SECTION.search(text):
        return InventoryFormat.ANSIBLE_INI
    if _looks_ssh(text):
        return InventoryFormat.SSH_CONFIG
    if _looks_yaml(text):
        return InventoryFormat.ANSIBLE_YAML
    return InventoryFormat.ANSIBLE_INI


def parse_inventory(
    text: str,
    *,
    fmt: InventoryFormat | None = None,
    filename: str | None = None,
    trust_on_first_use: bool = False,
) -> ImportedInventory:
    """Parse an inventory into hosts tend can create.

    Args:
        text: The file's content.
        fmt: Its format; detected from ``filename`` and ``text`` when None.
        filename: The file's name, for detection and messages.
        trust_on_first_use: Set on every imported host.

    Returns:
        The hosts, in inventory order, and one-sentence warnings about what was skipped
        or ignored.

    Raises:
        InventoryError: When the file is malformed, a value is invalid (naming the host and
            field) or two hosts would get the same tend name.
    """
    text = text.removeprefix("\ufeff")
    fmt = InventoryFormat(fmt) if fmt is not None else detect_format(text, filename)
    warnings: list[str] = []
    if fmt is InventoryFormat.SSH_CONFIG:
        drafts = parse_ssh_config(text, filename, warnings)
    else:
        yaml_format = fmt is InventoryFormat.ANSIBLE_YAML
        drafts = parse_ansible(text, yaml_format=yaml_format, filename=filename, warnings=warnings)
    hosts = build_hosts(
        drafts, filename=filename, trust_on_first_use=trust_on_first_use, warnings=warnings
    )
    return ImportedInventory(hosts=hosts, warnings=warnings)


__all__ = [
    "ImportedInventory",
    "InventoryError",
    "InventoryFormat",
    "detect_format",
    "host_name_from",
    "parse_inventory",
    "tag_from",
]
