"""The job kinds of alerting: ``alerts.evaluate`` (periodic) and ``alerts.notify``."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from tend.assistant.investigations import hold_for_investigation
from tend.errors import ServiceUnavailable
from tend.jobs.kinds import JobContext, job_kind
from tend.monitoring import notify  # noqa: F401 - registers alerts.notify
from tend.monitoring.alerts.service import SnapshotSource

if TYPE_CHECKING:
    from tend.context import AppContext

logger = logging.getLogger("tend.alerts")


def latest_values(app: AppContext) -> SnapshotSource:
    """The newest snapshot of every host, as the monitoring service keeps them."""
    return app.monitoring.latest


@job_kind(
    "alerts.evaluate",
    idempotent=True,
    description="evaluate the alert rules on the latest values",
    api=True,
)
async def evaluate_alerts(ctx: JobContext) -> dict[str, Any]:
    """Evaluate once, then queue the delivery of the notifications it created."""
    started = time.perf_counter()
    result = await ctx.app.alerts.evaluate(latest_values(ctx.app))
    ctx.app.service_metrics.observe_evaluation(time.perf_counter() - started)
    # Firing notifications of rules with ``investigate`` wait for their investigation.
    ids = await hold_for_investigation(ctx.app, result.notifications)
    if ids:
        try:
            await ctx.app.jobs.enqueue(
                "alerts.notify",
                {"ids": ids},
                requested_by="tend",
                idempotency_key=f"alerts.notify:{ids[0]}-{ids[-1]}",
            )
        except ServiceUnavailable:  # saved as queued; sent when the broker is back
            logger.warning("job broker unreachable; alert notifications will be sent later")
    return {
        "rules": result.rules,
        "series": result.series,
        "started": result.started,
        "fired": result.fired,
        "resolved": result.resolved,
        "notifications": len(ids),
        "skipped": result.skipped,
    }
