"""Build the execution service and its transports from settings (called in the lifespan)."""

from __future__ import annotations

import logging

from sqlalchemy import update

from tend.db import Database
from tend.execution.audit import AuditEntry, AuditLog
from tend.execution.connect import Transports
from tend.execution.policy import PolicyRules, load_rules
from tend.execution.service import ExecutionService
from tend.execution.transports.base import ResourceLimits, SshTarget
from tend.execution.transports.local import LocalTransport
from tend.execution.transports.pool import SshPool
from tend.hosts.models import Host
from tend.settings import Settings

logger = logging.getLogger("tend.execution")


def load_policy(settings: Settings) -> PolicyRules | None:
    """Load the policy rules file named by settings, if there is one.

    Raises:
        PolicyRulesError: When the file is invalid (the server refuses to start on a bad policy).
    """
    path = settings.effective_policy_file()
    if path is None:
        return None
    rules = load_rules(path)
    logger.info("policy rules loaded", extra={"path": str(path), "rules": len(rules.rules)})
    return rules


def build_execution(settings: Settings, database: Database, secret_key: str) -> ExecutionService:
    """Assemble the execution service: audit log, local transport, SSH pool, policy rules.

    Args:
        settings: Server settings.
        database: The database.
        secret_key: The server's secret key (keys the audit chain).

    Returns:
        The service; close its transports at shutdown.
    """
    audit = AuditLog(database, secret_key)

    async def pin_host_key(target: SshTarget, public_key: str) -> None:
        # Trust on first use: pin the key the host presented, once, and say so in the audit log.
        async with database.session() as session:
            await session.execute(
                update(Host)
                .where(Host.name == target.name, Host.host_key.is_(None))
                .values(host_key=public_key)
            )
        await audit.append(
            AuditEntry(event="host_key_pinned", actor="tend", host=target.name, detail=public_key)
        )
        logger.warning("host key pinned by trust-on-first-use", extra={"host": target.name})

    limits = ResourceLimits(
        cpu_seconds=settings.local_cpu_seconds,
        address_space_bytes=settings.local_address_space_bytes,
        file_size_bytes=settings.local_file_size_bytes,
        open_files=settings.local_open_files,
    )
    pool = SshPool(
        max_connections=settings.ssh_max_connections,
        max_channels_per_host=settings.ssh_max_channels_per_host,
        idle_timeout=settings.ssh_idle_timeout,
        keepalive_interval=settings.ssh_keepalive_interval,
        on_new_host_key=pin_host_key,
        remote_timeout=settings.ssh_remote_timeout,
    )
    transports = Transports(settings, pool, LocalTransport(limits))
    return ExecutionService(
        settings=settings,
        database=database,
        audit=audit,
        transports=transports,
        rules=load_policy(settings),
    )
