"""``tend beat`` runs the periodic work of a Celery deployment: the schedule and the monitor."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import select

from tend.db import Database
from tend.jobs.models import Job
from tend.monitoring.models import HostStatus
from tend.settings import Settings
from tests.jobs.celery_support import REDIS_URL, require_service, subprocess_env

BEAT_BROKER = REDIS_URL.rsplit("/", 1)[0] + "/13"  # nobody consumes here: only sends are seen
TEND = [sys.executable, "-m", "tend"]


async def _seen(database: Database) -> tuple[set[str], str | None]:
    async with database.session() as session:
        kinds = set((await session.scalars(select(Job.kind))).all())
        status = await session.get(HostStatus, "local")
    return kinds, status.state if status is not None else None


def test_beat_schedules_periodic_jobs_and_collects_the_hosts(tmp_path: Path) -> None:
    require_service("redis", BEAT_BROKER)
    fields = {
        "data_dir": str(tmp_path / "data"),
        "jobs": "celery",
        "broker_url": BEAT_BROKER,
        "monitor_interval": 1,
        "log_format": "json",
    }
    env = subprocess_env(fields)
    subprocess.run([*TEND, "db", "upgrade"], env=env, check=True, timeout=60)
    beat = subprocess.Popen(
        [*TEND, "beat"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    database = Database.from_settings(settings)
    try:
        kinds: set[str] = set()
        state: str | None = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and beat.poll() is None:
            kinds, state = asyncio.run(_seen(database))
            if "approvals.expire" in kinds and state == "up":
                break
            time.sleep(0.3)
        assert beat.poll() is None, beat.stderr.read().decode() if beat.stderr else ""
        assert {"approvals.expire", "alerts.evaluate"} <= kinds
        assert state == "up"  # the monitor loop collected the local host
    finally:
        beat.send_signal(signal.SIGINT)
        try:
            beat.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(beat.pid, signal.SIGKILL)
            beat.wait(timeout=5)
        asyncio.run(database.dispose())
        redis.Redis.from_url(BEAT_BROKER).flushdb()
