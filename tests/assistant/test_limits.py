"""Per-user daily limits: usage is recorded per UTC day, and a run stops clearly at the limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage, RunUsage

from tend.assistant.limits import AssistantLimitReached, DailyLimits, DailyUsage, UsageLimiter
from tend.auth.models import User
from tend.db import Database
from tend.migrate import upgrade_database
from tend.settings import Settings
from tests.conftest import make_settings

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    await upgrade_database(db)
    yield db
    await db.dispose()


@pytest.fixture
async def user_id(database: Database) -> int:
    async with database.session() as session:
        user = User(username="alice", password_hash="-", role="operator")
        session.add(user)
        await session.flush()
        return user.id


async def test_usage_adds_up_per_user_per_utc_day(database: Database, user_id: int) -> None:
    limiter = UsageLimiter(database)
    await limiter.record(
        user_id, requests=2, input_tokens=1000, output_tokens=200, cost=0.01, now=NOON
    )
    await limiter.record(user_id, requests=1, input_tokens=500, output_tokens=50, now=NOON)
    tomorrow = datetime(2026, 11, 27, 0, 0, 1, tzinfo=UTC)
    await limiter.record(user_id, requests=1, input_tokens=7, output_tokens=3, now=tomorrow)
    today = await limiter.today(user_id, now=NOON)
    assert today == DailyUsage(NOON.date(), 3, 1500, 250, pytest.approx(0.01))
    assert today.total_tokens == 1750
    assert (await limiter.today(user_id, now=tomorrow)).total_tokens == 10
    assert [d.day.day for d in await limiter.history(user_id)] == [27, 26]


async def test_concurrent_runs_all_count(database: Database, user_id: int) -> None:
    limiter = UsageLimiter(database)
    await asyncio.gather(
        *(
            limiter.record(user_id, requests=1, input_tokens=100, output_tokens=10, now=NOON)
            for _ in range(10)
        )
    )
    today = await limiter.today(user_id, now=NOON)
    assert (today.requests, today.total_tokens) == (10, 1100)


async def test_the_limit_message_says_what_and_when_it_resets(
    database: Database, user_id: int
) -> None:
    limiter = UsageLimiter(database, daily_tokens=1000)
    assert (await limiter.check(user_id, now=NOON)).total_tokens == 0
    await limiter.record(user_id, requests=1, input_tokens=900, output_tokens=100, now=NOON)
    with pytest.raises(AssistantLimitReached) as caught:
        await limiter.check(user_id, now=NOON)
    error = caught.value
    assert error.status_code == 429
    assert "daily assistant limit of 1,000 tokens" in error.detail
    assert "1,000 used today" in error.detail
    assert "in 12 h 0 min" in error.detail
    assert error.headers["Retry-After"] == str(12 * 3600)


async def test_limits_come_from_settings(database: Database, tmp_path: Path) -> None:
    limiter = UsageLimiter.from_settings(
        database, make_settings(tmp_path, assistant_daily_tokens=5000, assistant_daily_cost=2.5)
    )
    assert (limiter.daily_tokens, limiter.daily_cost) == (5000, 2.5)
    unlimited = UsageLimiter.from_settings(database, make_settings(tmp_path))
    assert (unlimited.daily_tokens, unlimited.daily_cost) == (None, None)


async def test_a_cost_limit_counts_priced_usage(database: Database, user_id: int) -> None:
    limiter = UsageLimiter(database, daily_cost=0.50)
    await limiter.record(
        user_id, requests=1, input_tokens=10, output_tokens=10, cost=0.30, now=NOON
    )
    await limiter.check(user_id, now=NOON)
    await limiter.record(
        user_id, requests=1, input_tokens=10, output_tokens=10, cost=0.25, now=NOON
    )
    with pytest.raises(AssistantLimitReached, match=r"\$0\.50 is used up \(\$0\.55 spent today\)"):
        await limiter.check(user_id, now=NOON)


def counting_model(steps: int) -> FunctionModel:
    """A model that calls a tool ``steps`` times, each response using 1,000 tokens."""

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        usage = RequestUsage(input_tokens=900, output_tokens=100)
        if sum(isinstance(m, ModelResponse) for m in messages) < steps:
            return ModelResponse(parts=[ToolCallPart("ping", {"n": len(messages)})], usage=usage)
        return ModelResponse(parts=[TextPart("done")], usage=usage)

    return FunctionModel(script)


def agent_with(model: FunctionModel, limits: DailyLimits) -> Agent[None, str]:
    agent = Agent(model, capabilities=[limits])

    @agent.tool_plain
    def ping(n: int) -> str:
        """Ping."""
        return "pong"

    return agent


async def test_a_run_records_its_usage_and_cost(database: Database, user_id: int) -> None:
    limiter = UsageLimiter(database, daily_tokens=100_000)
    priced = DailyLimits(limiter, user_id, price=lambda usage: usage.total_tokens * 1e-6)
    result = await agent_with(counting_model(2), priced).run("go")
    assert result.output == "done"
    today = await limiter.today(user_id)
    assert (today.requests, today.input_tokens, today.output_tokens) == (3, 2700, 300)
    assert today.cost == pytest.approx(0.003)


async def test_a_run_stops_at_the_daily_limit_and_still_records(
    database: Database, user_id: int
) -> None:
    limiter = UsageLimiter(database, daily_tokens=2500)
    agent = agent_with(counting_model(5), DailyLimits(limiter, user_id))
    with pytest.raises(AssistantLimitReached, match="daily assistant limit of 2,500 tokens"):
        await agent.run("go")
    today = await limiter.today(user_id)
    assert today.requests == 3
    assert today.total_tokens == 3000

    calls = []

    def never(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append(messages)
        return ModelResponse(parts=[TextPart("should not run")])

    with pytest.raises(AssistantLimitReached):
        await agent_with(FunctionModel(never), DailyLimits(limiter, user_id)).run("again")
    assert calls == []  # refused before asking the model


async def test_an_unknown_price_does_not_fail_the_run(database: Database, user_id: int) -> None:
    limiter = UsageLimiter(database, daily_cost=1.0)

    def broken(usage: RunUsage) -> float | None:
        raise LookupError("no price for this model")

    result = await agent_with(counting_model(1), DailyLimits(limiter, user_id, price=broken)).run(
        "go"
    )
    assert result.output == "done"
    assert (await limiter.today(user_id)).cost == 0.0
