"""Shared pieces of the inventory importers: result types, naming rules and host validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from tend.hosts.schemas import HostCreate, Transport

MAX_NAME = 63
_NAME_BAD = re.compile(r"[^a-z0-9-]")
_TAG_BAD = re.compile(r"[^a-z0-9_.-]")
_DASHES = re.compile(r"-{2,}")
TEMPLATE_MARKERS = ("{{", "{%")


class InventoryFormat(StrEnum):
    """The inventory formats tend can import."""

    ANSIBLE_INI = "ansible-ini"
    ANSIBLE_YAML = "ansible-yaml"
    SSH_CONFIG = "ssh-config"


class InventoryError(ValueError):
    """An inventory that cannot be imported, located by file name and line where known."""

    def __init__(
        self, message: str, *, filename: str | None = None, line: int | None = None
    ) -> None:
        """Create the error.

        Args:
            message: What is wrong, naming the host and field where relevant.
            filename: The inventory file.
            line: The 1-based line number in that file.
        """
        self.message = message
        self.filename = filename
        self.line = line
        super().__init__(f"{where(filename, line)}: {message}")


def where(filename: str | None, line: int | None) -> str:
    """Render a location such as ``hosts.ini:12``, ``hosts.ini`` or ``line 12``."""
    if filename and line:
        return f"{filename}:{line}"
    if filename:
        return filename
    if line:
        return f"line {line}"
    return "inventory"


@dataclass(frozen=True)
class ImportedInventory:
    """The hosts found in an inventory and what was skipped or ignored on the way."""

    hosts: list[HostCreate]
    warnings: list[str]


@dataclass
class HostDraft:
    """A host as an importer read it, before tend validates it.

    ``fields`` holds HostCreate field values; ``origins`` says where each came from
    (the source keyword and its line), so that errors can point at it.
    """

    source: str
    line: int | None
    fields: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    templated: set[str] = field(default_factory=set)


def host_name_from(source: str) -> str:
    """Derive a tend host name from an inventory host name or ssh alias.

    Lower-cases it, turns anything outside ``[a-z0-9-]`` into '-', collapses repeated '-',
    strips edge '-' and cuts it to 63 characters.

    Args:
        source: The inventory host name.

    Returns:
        The tend host name, or '' when nothing usable remains.
    """
    name = _DASHES.sub("-", _NAME_BAD.sub("-", source.lower())).strip("-")
    return name[:MAX_NAME].rstrip("-")


def tag_from(group: str) -> str:
    """Derive a tag from a group name ('' when nothing usable remains).

    Args:
        group: The inventory group name.

    Returns:
        The lower-case tag with invalid characters replaced by '-'.
    """
    tag = _TAG_BAD.sub("-", group.lower()).lstrip("_.-")
    return tag[:MAX_NAME]


def is_template(value: object) -> bool:
    """Whether a value looks like an unrendered Jinja template."""
    return isinstance(value, str) and any(m in value for m in TEMPLATE_MARKERS)


def summarise(names: list[str], limit: int = 10) -> str:
    """Join names for a warning, cutting long lists short."""
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


def build_hosts(
    drafts: list[HostDraft],
    *,
    filename: str | None,
    trust_on_first_use: bool,
    warnings: list[str],
) -> list[HostCreate]:
    """Name and validate drafted hosts.

    Args:
        drafts: The hosts in inventory order.
        filename: The inventory file, for messages.
        trust_on_first_use: Value of that flag on every host.
        warnings: Receives a warning for each host skipped for an unrendered template.

    Returns:
        The validated hosts.

    Raises:
        InventoryError: When a name cannot be derived, two hosts map to one name,
            or a value is invalid.
    """
    taken: dict[str, HostDraft] = {}
    hosts: list[HostCreate] = []
    for draft in drafts:
        name = host_name_from(draft.source)
        if not name:
            msg = f"host {draft.source!r}: no usable characters for a tend host name"
            raise InventoryError(msg, filename=filename, line=draft.line)
        other = taken.get(name)
        if other is not None:
            msg = (
                f"hosts {other.source!r} ({where(None, other.line)}) and {draft.source!r} "
                f"both become the tend host name {name!r}; rename one of them"
            )
            raise InventoryError(msg, filename=filename, line=draft.line)
        taken[name] = draft
        data = {
            **draft.fields,
            "name": name,
            "tags": sorted(draft.tags),
            "trust_on_first_use": trust_on_first_use,
        }
        try:
            hosts.append(HostCreate.model_validate(data))
        except ValidationError as exc:
            failed = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            templated = sorted(failed & draft.templated)
            if templated:
                keys = ", ".join(draft.origins.get(f, (f, None))[0] for f in templated)
                warnings.append(
                    f"Skipped host {draft.source!r} because {keys} is an unrendered Jinja "
                    "template that is not a valid value."
                )
                continue
            raise _invalid(draft, exc, filename) from None
    return hosts


def _invalid(draft: HostDraft, exc: ValidationError, filename: str | None) -> InventoryError:
    """Turn a validation error into an InventoryError naming the host, fields and lines."""
    problems: list[str] = []
    line = draft.line
    for err in exc.errors():
        fld = str(err["loc"][0]) if err["loc"] else ""
        origin, origin_line = draft.origins.get(fld, (fld, None))
        if fld and len(problems) == 0 and origin_line:
            line = origin_line
        label = f"{fld} (from {origin})" if fld and origin != fld else (fld or "host")
        got = repr(err["input"])
        got = got if len(got) <= 80 else got[:77] + "..."
        problems.append(f"{label}: {err['msg']}" + (f" (got {got})" if fld else ""))
    msg = f"host {draft.source!r}: " + "; ".join(problems)
    return InventoryError(msg, filename=filename, line=line)


__all__ = [
    "HostDraft",
    "ImportedInventory",
    "InventoryError",
    "InventoryFormat",
    "Transport",
    "build_hosts",
    "host_name_from",
    "is_template",
    "summarise",
    "tag_from",
    "where",
]
