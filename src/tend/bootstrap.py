"""First start of a server: migrate, then create the first admin on an empty database.

The ``local`` host comes with the schema (migration 0002), so it exists however the database was
first created (``tend serve``, ``tend db upgrade`` or ``tend users create``).
"""

from __future__ import annotations

import logging
import secrets
import sys
from typing import TextIO

from tend.auth.models import Role
from tend.auth.service import count_users, create_user
from tend.context import AppContext
from tend.errors import Conflict
from tend.migrate import upgrade_database

logger = logging.getLogger("tend.bootstrap")

FIRST_ADMIN = "admin"


async def prepare_database(context: AppContext) -> str | None:
    """Bring the database up to date and seed an empty one.

    On a database without users this creates user ``admin`` with a random password.

    Args:
        context: The app context.

    Returns:
        The generated admin password when the admin was created now (show it once), else ``None``.
    """
    if context.settings.migrate_on_start:
        revision = await upgrade_database(context.database)
        logger.info("database schema is current", extra={"revision": revision})
    password = secrets.token_urlsafe(18)
    try:
        async with context.database.session() as session:
            if await count_users(session) > 0:
                return None
            await create_user(
                session, context.passwords, username=FIRST_ADMIN, password=password, role=Role.ADMIN
            )
    except Conflict:
        # Another process seeded the database at the same moment.
        return None
    logger.info("first start: created user admin")
    return password


def announce_admin_password(password: str, stream: TextIO | None = None) -> None:
    """Print the first admin's password once, straight to the terminal (never to the log).

    Args:
        password: The generated password.
        stream: Where to print (default: standard error).
    """
    out = stream or sys.stderr
    out.write(
        "\n"
        "  tend: first start — created user 'admin'.\n"
        f"  password: {password}\n"
        "  It is shown only this once and stored only as an argon2 hash.\n"
        "  Sign in, then create an API token:  tend tokens create cli --username admin\n\n"
    )
    out.flush()
