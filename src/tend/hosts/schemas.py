"""Request and response models of the hosts inventory, with name and address validation."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOP = re.compile(
    r"^(?:[a-z_][a-z0-9_.-]{0,31}@)?(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_HOST_KEY = re.compile(
    r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+$"
)


class Transport(StrEnum):
    """How tend reaches a host."""

    LOCAL = "local"
    SSH = "ssh"


def check_host_name(value: str) -> str:
    """Validate a host name: a lowercase DNS label (a-z, 0-9, '-', at most 63, no edge hyphen).

    Args:
        value: The candidate name.

    Returns:
        The name.

    Raises:
        ValueError: When it is not a DNS label.
    """
    if not _LABEL.match(value):
        msg = "must be a lowercase DNS label: a-z, 0-9 and '-', 1-63 chars, no leading/trailing '-'"
        raise ValueError(msg)
    return value


def check_address(value: str) -> str:
    """Validate an address: an IPv4/IPv6 address or a DNS host name.

    Args:
        value: The candidate address.

    Returns:
        The normalised address (host names lower-cased, IPs in canonical form).

    Raises:
        ValueError: When it is neither.
    """
    candidate = value.strip()
    try:
        return str(ipaddress.ip_address(candidate.strip("[]")))
    except ValueError:
        pass
    name = candidate.lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        msg = "must be an IP address or a DNS host name"
        raise ValueError(msg)
    if labels[-1].isdigit():
        msg = "looks like an IP address but is not a valid one"
        raise ValueError(msg)
    return name


def check_tags(values: list[str]) -> list[str]:
    """Validate and normalise tags: lowercase labels, de-duplicated and sorted.

    Args:
        values: The candidate tags.

    Returns:
        The tags.

    Raises:
        ValueError: When a tag is malformed.
    """
    tags = sorted({v.strip().lower() for v in values})
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        msg = (
            f"invalid tag(s) {bad}: use a-z, 0-9, '_', '.', '-' (at most 63, starting alphanumeric)"
        )
        raise ValueError(msg)
    return tags


def check_user(value: str | None) -> str | None:
    """Validate a POSIX login name."""
    if value is not None and not _USER.match(value):
        msg = "must be a POSIX user name (a-z, 0-9, '_', '.', '-', at most 32)"
        raise ValueError(msg)
    return value


def check_key_file(value: str | None) -> str | None:
    """Validate a private key path: absolute or ``~/``-relative, no NUL or newline."""
    if value is None:
        return None
    if any(c in value for c in "\x00\n\r") or not value.startswith(("/", "~/")):
        msg = "must be an absolute path (or start with ~/) to a private key file on the tend server"
        raise ValueError(msg)
    return value


def check_proxy_jump(value: str | None) -> str | None:
    """Validate OpenSSH ProxyJump syntax: ``[user@]host[:port]`` hops separated by commas."""
    if value is None or value.lower() == "none":
        return None
    hops = [hop.strip() for hop in value.split(",")]
    if not all(_HOP.match(hop) and not hop.split("@")[-1].startswith("-") for hop in hops):
        msg = "must be [user@]host[:port] hops separated by commas"
        raise ValueError(msg)
    return ",".join(hops)


def check_host_key(value: str | None) -> str | None:
    """Validate an OpenSSH public key line ``TYPE BASE64`` (a trailing comment is dropped)."""
    if value is None:
        return None
    parts = value.strip().split()
    key = " ".join(parts[:2])
    if len(parts) < 2 or not _HOST_KEY.match(key):
        msg = "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA...'"
        raise ValueError(msg)
    return key


HostName = Annotated[str, AfterValidator(check_host_name)]
Address = Annotated[str, Field(max_length=255), AfterValidator(check_address)]
Port = Annotated[int, Field(ge=1, le=65535)]
Tags = Annotated[list[str], Field(max_length=64), AfterValidator(check_tags)]
LoginName = Annotated[str | None, AfterValidator(check_user)]
KeyFile = Annotated[str | None, Field(max_length=1024), AfterValidator(check_key_file)]
ProxyJump = Annotated[str | None, Field(max_length=1024), AfterValidator(check_proxy_jump)]
HostKey = Annotated[str | None, Field(max_length=16384), AfterValidator(check_host_key)]


class HostCreate(BaseModel):
    """A host to add to the inventory."""

    model_config = ConfigDict(extra="forbid")

    name: HostName
    address: Address | None = Field(default=None, description="required for ssh hosts")
    port: Port = 22
    user: LoginName = None
    tags: Tags = Field(default_factory=list)
    transport: Transport = Transport.SSH
    key_file: KeyFile = None
    proxy_jump: ProxyJump = None
    trust_on_first_use: bool = Field(
        default=False, description="accept and pin the host key seen on the first connection"
    )
    host_key: HostKey = Field(default=None, description="pin this public key ('ssh-ed25519 ...')")

    @model_validator(mode="after")
    def _address_for_ssh(self) -> HostCreate:
        if self.address is None:
            if self.transport is Transport.SSH:
                msg = "address is required for ssh hosts"
                raise ValueError(msg)
            self.address = "localhost"
        return self


class HostUpdate(BaseModel):
    """Changes to a host; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    address: Address | None = None
    port: Port | None = None
    user: LoginName = None
    tags: Tags | None = None
    transport: Transport | None = None
    key_file: KeyFile = None
    proxy_jump: ProxyJump = None
    trust_on_first_use: bool | None = None
    host_key: HostKey = None


class HostPublic(BaseModel):
    """A host as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    address: str
    port: int
    user: str | None
    tags: list[str]
    transport: Transport
    key_file: str | None
    proxy_jump: str | None
    trust_on_first_use: bool
    host_key: str | None
    created_at: datetime
    updated_at: datetime


class HostImport(BaseModel):
    """Many hosts at once (from an inventory file), applied in one transaction."""

    model_config = ConfigDict(extra="forbid")

    hosts: Annotated[list[HostCreate], Field(min_length=1, max_length=10000)]
    on_conflict: Literal["skip", "update", "error"] = Field(
        default="skip", description="what to do with a name that already exists"
    )


class HostImportResult(BaseModel):
    """What an import did, by host name."""

    created: list[str]
    updated: list[str]
    skipped: list[str]
