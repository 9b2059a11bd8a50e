"""``tend worker`` and ``tend beat``: the distributed job backend (TEND_JOBS=celery)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Annotated

import typer

from tend.cli.errors import CliError
from tend.context import AppContext, close_context
from tend.db import Database
from tend.jobs.celery_backend import make_celery
from tend.jobs.runtime import load_job_modules, run_jobs
from tend.log import configure_logging
from tend.settings import Settings


def _celery_settings() -> Settings:
    settings = Settings()
    if settings.jobs != "celery" or settings.broker_url is None:
        msg = "set TEND_JOBS=celery and TEND_BROKER_URL (redis://... or amqp://...) first"
        raise CliError(msg)
    configure_logging(settings.log_level, settings.log_format)
    load_job_modules(settings)
    return settings


def worker(
    queues: Annotated[
        str, typer.Option(help="comma-separated queues to take jobs from")
    ] = "default",
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="jobs at once")] = 8,
) -> None:
    """Run a Celery worker that takes tend jobs from the broker."""
    settings = _celery_settings()
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname=tend-{os.getpid()}@{socket.gethostname()}",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


async def _beat(settings: Settings) -> None:
    """Run the scheduler, the monitor loop and the Celery re-sender until interrupted.

    The same lifecycle as the server's (``run_jobs``) minus HTTP: each piece acts only while this
    process holds its lease, so a ``tend serve`` with ``TEND_SCHEDULER=true`` never doubles it.
    """
    settings = settings.model_copy(update={"scheduler": True})
    context = AppContext.build(settings, Database.from_settings(settings))
    try:
        async with run_jobs(context):
            await asyncio.Event().wait()
    finally:
        await close_context(context)


def beat() -> None:
    """Schedule periodic work and re-send jobs the broker missed (one lease holder at a time)."""
    settings = _celery_settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_beat(settings))
