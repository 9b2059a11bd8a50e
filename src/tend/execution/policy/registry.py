"""The registry of command knowledge: every :class:`CommandSpec`, keyed by command name."""

from __future__ import annotations

from tend.execution.policy import (
    commands_files,
    commands_git,
    commands_net,
    commands_pkg,
    commands_storage,
    commands_sysinfo,
    commands_system,
    commands_text,
    commands_tools,
    shells,
    wrappers,
    wrappers_gnu,
    wrappers_remote,
    wrappers_ssh,
)
from tend.execution.policy.argv import command_family
from tend.execution.policy.knowledge import CommandSpec

_MODULES = (
    commands_files,
    commands_git,
    commands_net,
    commands_pkg,
    commands_storage,
    commands_sysinfo,
    commands_system,
    commands_text,
    commands_tools,
    shells,
    wrappers,
    wrappers_gnu,
    wrappers_remote,
    wrappers_ssh,
)


def _build() -> dict[str, CommandSpec]:
    registry: dict[str, CommandSpec] = {}
    for module in _MODULES:
        for command in module.SPECS:
            for name in command.names:
                if name in registry:
                    raise RuntimeError(f"the command {name} is described twice")
                registry[name] = command
    return registry


REGISTRY: dict[str, CommandSpec] = _build()
"""Every known command name (or family name) and what the policy knows about it."""


def lookup(name: str) -> CommandSpec | None:
    """Find the knowledge about a command basename (``None`` when it is unknown).

    Args:
        name: A command basename, e.g. ``rm``, ``python3.11`` or ``mkfs.ext4``.

    Returns:
        The spec of the command's family, or ``None``.
    """
    return REGISTRY.get(name) or REGISTRY.get(command_family(name))


def is_known_command(name: str) -> bool:
    """Whether the knowledge base describes the command basename ``name``."""
    return lookup(name) is not None
