"""``tend serve`` and ``tend db``: run the server, migrate the database directly."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tend.cli.errors import CliError
from tend.cli.output import out
from tend.db import Database
from tend.execution.build import load_policy
from tend.execution.policy import PolicyRulesError
from tend.log import configure_logging
from tend.migrate import upgrade_database
from tend.settings import Settings

db_app = typer.Typer(help="Manage the database directly (no server needed).", no_args_is_help=True)


def masked_url(settings: Settings) -> str:
    """Return the database URL with any password hidden."""
    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
) -> None:
    """Run the tend server (migrates the database and creates the first admin on first start)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        load_policy(settings)  # refuse to start on a bad policy file, with one clear line
    except (PolicyRulesError, OSError) as exc:
        raise CliError(f"policy file: {exc}") from exc
    uvicorn.run(
        "tend.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


async def _upgrade(settings: Settings) -> str | None:
    database = Database.from_settings(settings)
    try:
        return await upgrade_database(database)
    finally:
        await database.dispose()


def run_upgrade(settings: Settings) -> str | None:
    """Apply migrations, turning database errors into one CLI line.

    Args:
        settings: Settings naming the database.

    Returns:
        The revision the database is at.

    Raises:
        CliError: When the database cannot be reached or migrated.
    """
    try:
        return asyncio.run(_upgrade(settings))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"cannot migrate {masked_url(settings)}: {reason}") from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    settings = Settings()
    revision = run_upgrade(settings)
    out.print(f"database {masked_url(settings)} is at revision {revision}")
