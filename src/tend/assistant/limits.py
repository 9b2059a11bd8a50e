"""Per-user daily limits on the assistant: tokens (and cost when the price is known).

``UsageLimiter`` keeps what each user's runs used per UTC day (``assistant_usage_days``) and says
when a limit is reached; ``DailyLimits`` is the pydantic-ai capability that checks it before a
run and before every model request of the run, and records the run's usage when it ends
(whether it completed, failed or was cancelled). Per-run bounds — steps, tool calls, tokens of one
run, identical repeated tool calls — are the agent's own (``RunLimits`` and the loop guard).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import WrapRunHandler
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.run import AgentRunResult
from pydantic_ai.usage import RunUsage
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from tend.assistant.context_models import AssistantUsageDay
from tend.db import Database, utcnow
from tend.errors import TendError

if TYPE_CHECKING:
    from tend.settings import Settings

logger = logging.getLogger("tend.assistant.limits")

Price = Callable[[RunUsage], float | None]
"""The cost in US dollars of some usage, or ``None`` when the model's price is unknown."""


class AssistantLimitReached(TendError):
    """An assistant limit (daily tokens or cost) is reached; ``Retry-After`` says when it resets."""

    status_code = 429


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """What one user's assistant runs used on one UTC day."""

    day: date
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(
        now.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
    )


def _in_words(seconds: float) -> str:
    minutes = max(1, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class UsageLimiter:
    """Daily token and cost limits per user, kept in the database."""

    def __init__(
        self,
        database: Database,
        *,
        daily_tokens: int | None = None,
        daily_cost: float | None = None,
    ) -> None:
        """Bind the limiter to a database.

        Args:
            database: The database holding ``assistant_usage_days``.
            daily_tokens: Tokens (input + output) one user may use per UTC day; ``None``: no limit.
            daily_cost: US dollars one user may spend per UTC day (counted only for models with a
                known price); ``None``: no limit.
        """
        self.database = database
        self.daily_tokens = daily_tokens
        self.daily_cost = daily_cost
        dialect = database.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> UsageLimiter:
        """A limiter with ``assistant_daily_tokens`` and ``assistant_daily_cost``."""
        return cls(
            database,
            daily_tokens=settings.assistant_daily_tokens,
            daily_cost=settings.assistant_daily_cost,
        )

    async def today(self, user_id: int, *, now: datetime | None = None) -> DailyUsage:
        """What ``user_id`` used today (UTC).

        Args:
            user_id: The user.
            now: The current time (tests).

        Returns:
            Today's usage (zeros when nothing was recorded).
        """
        day = (now or utcnow()).astimezone(UTC).date()
        async with self.database.session() as session:
            row = await session.get(AssistantUsageDay, (user_id, day))
        if row is None:
            return DailyUsage(day)
        return DailyUsage(day, row.requests, row.input_tokens, row.output_tokens, row.cost)

    def ensure_room(self, used: DailyUsage, *, now: datetime | None = None) -> None:
        """Raise when ``used`` reaches a daily limit.

        Args:
            used: The day's usage so far (what is recorded plus a running run's).
            now: The current time (tests).

        Raises:
            AssistantLimitReached: With the limit, the usage, and when it resets.
        """
        what = None
        if self.daily_tokens is not None and used.total_tokens >= self.daily_tokens:
            what = (
                f"the daily assistant limit of {self.daily_tokens:,} tokens is used up"
                f" ({used.total_tokens:,} used today)"
            )
        elif self.daily_cost is not None and used.cost >= self.daily_cost:
            what = (
                f"the daily assistant limit of ${self.daily_cost:.2f} is used up"
                f" (${used.cost:.2f} spent today)"
            )
        if what is None:
            return
        moment = now or utcnow()
        wait = (_next_midnight(moment) - moment).total_seconds()
        raise AssistantLimitReached(
            f"{what}; it resets at 00:00 UTC, in {_in_words(wait)}",
            headers={"Retry-After": str(max(1, int(wait)))},
        )

    async def check(self, user_id: int, *, now: datetime | None = None) -> DailyUsage:
        """Today's usage of ``user_id``, after making sure a limit is not reached.

        Raises:
            AssistantLimitReached: A daily limit is reached.
        """
        used = await self.today(user_id, now=now)
        self.ensure_room(used, now=now)
        return used

    async def record(
        self,
        user_id: int,
        *,
        requests: int,
        input_tokens: int,
        output_tokens: int,
        cost: float | None = None,
        now: datetime | None = None,
    ) -> None:
        """Add a run's usage to the user's day, atomically (concurrent runs add up).

        Args:
            user_id: The user.
            requests: Model requests made.
            input_tokens: Input tokens used.
            output_tokens: Output tokens used.
            cost: US dollars, when the price is known.
            now: The current time (tests).
        """
        moment = now or utcnow()
        values = {
            "user_id": user_id,
            "day": moment.astimezone(UTC).date(),
            "requests": requests,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost": cost or 0.0,
            "updated_at": moment,
        }
        upsert = self._insert(AssistantUsageDay).values(**values)
        table = AssistantUsageDay.__table__.c
        added = ("requests", "input_tokens", "output_tokens", "cost")
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.user_id, table.day],
            set_={
                **{name: table[name] + upsert.excluded[name] for name in added},
                "updated_at": upsert.excluded.updated_at,
            },
        )
        async with self.database.session() as session:
            await session.execute(upsert)

    async def history(self, user_id: int, *, days: int = 30) -> list[DailyUsage]:
        """The user's recorded days, newest first (at most ``days``)."""
        query = (
            select(AssistantUsageDay)
            .where(AssistantUsageDay.user_id == user_id)
            .order_by(AssistantUsageDay.day.desc())
            .limit(days)
        )
        async with self.database.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [
            DailyUsage(r.day, r.requests, r.input_tokens, r.output_tokens, r.cost) for r in rows
        ]


@dataclass
class DailyLimits(AbstractCapability[Any]):
    """Enforces a user's daily limits on a run and records the run's usage when it ends.

    Attributes:
        limiter: The limiter.
        user_id: The user the run is for.
        price: Prices the run's usage (``tend.assistant.llm.price_of`` bound to the model).
    """

    limiter: UsageLimiter
    user_id: int
    price: Price | None = None
    _start: DailyUsage | None = field(default=None, repr=False)

    async def for_run(self, ctx: RunContext[Any]) -> DailyLimits:
        """A copy holding this run's starting point."""
        return dataclasses.replace(self, _start=None)

    def _cost(self, usage: RunUsage) -> float:
        if self.price is None:
            return 0.0
        try:
            return self.price(usage) or 0.0
        except Exception:  # an unknown price must not fail the run
            logger.warning("pricing the run failed", exc_info=True)
            return 0.0

    async def wrap_run(
        self, ctx: RunContext[Any], *, handler: WrapRunHandler
    ) -> AgentRunResult[Any]:
        """Refuse to start past a limit; record the usage however the run ends.

        Raises:
            AssistantLimitReached: A daily limit was reached before the run.
        """
        self._start = await self.limiter.check(self.user_id)
        try:
            return await handler()
        finally:
            usage = ctx.usage
            if usage.requests or usage.total_tokens:
                try:
                    await self.limiter.record(
                        self.user_id,
                        requests=usage.requests,
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cost=self._cost(usage),
                    )
                except Exception:  # recording must not hide the run's own outcome
                    logger.exception("recording assistant usage failed")

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        """Stop the run before a request once the day's usage (with this run's) reaches a limit.

        Raises:
            AssistantLimitReached: A daily limit is reached.
        """
        start = self._start or DailyUsage(utcnow().astimezone(UTC).date())
        usage = ctx.usage
        self.limiter.ensure_room(
            DailyUsage(
                start.day,
                start.requests + usage.requests,
                start.input_tokens + usage.input_tokens,
                start.output_tokens + usage.output_tokens,
                start.cost + self._cost(usage),
            )
        )
        return request_context

    @classmethod
    def get_serialization_name(cls) -> str | None:
        """Not part of agent specs (it holds a database)."""
        return None
