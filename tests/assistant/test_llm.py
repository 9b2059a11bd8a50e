"""The LLM layer through the real OpenAI and Anthropic client code against the mock provider."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import (
    AgentStreamEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.models import Model, override_allow_model_requests
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.fallback import FallbackModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.usage import RunUsage

from tend.assistant.llm import (
    AssistantNotConfigured,
    aclose_model,
    build_model,
    model_context_tokens,
    price_of,
)
from tend.assistant.llm_errors import MODEL_FAILURES, explain_model_failure
from tend.assistant.llm_retry import RetryingTransport, retry_after_seconds
from tend.settings import Settings
from tests.assistant.mock_provider import (
    MockProvider,
    call,
    cut_stream,
    hang,
    raw_call,
    status,
    text,
    tool_calls,
)
from tests.conftest import make_settings

PROVIDERS = ["openai:gpt-4.1", "anthropic:claude-sonnet-4-6"]
MODES = [pytest.param(False, id="whole"), pytest.param(True, id="streamed")]


class Finding(BaseModel):
    title: str
    evidence: str


class Report(BaseModel):
    summary: str
    findings: list[Finding]


def _settings(tmp_path: Path, mock: MockProvider, model: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, **mock.settings(model, **overrides))


def _endpoint(model: str) -> str:
    return "/v1/messages" if model.startswith("anthropic") else "/v1/chat/completions"


class Run:
    """An agent over a built model with two tiny tools that record their calls."""

    def __init__(self, model: Model, output_type: Any = str) -> None:
        self.model = model
        self.calls: list[tuple[str, Any]] = []
        self.deltas: list[str] = []
        self.agent: Agent[None, Any] = Agent(model, output_type=output_type, retries=2)

        @self.agent.tool_plain
        def disk_usage(path: str) -> str:
            """Disk usage of a path."""
            self.calls.append(("disk_usage", path))
            return f"{path}: 91% used"

        @self.agent.tool_plain
        def count_lines(unit: str, lines: int) -> str:
            """Count log lines of a unit."""
            self.calls.append(("count_lines", lines))
            return f"{unit}: {lines} lines"

    async def _collect(self, _ctx: Any, events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                self.deltas.append(event.part.content)
            if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                self.deltas.append(event.delta.content_delta)

    async def ask(self, prompt: str, *, streamed: bool) -> Any:
        try:
            handler = self._collect if streamed else None
            result = await self.agent.run(prompt, event_stream_handler=handler)
            return result.output
        finally:
            await aclose_model(self.model)


def _sent_text(mock: MockProvider, index: int) -> str:
    return mock.requests[index].text


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_text_answer(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    mock_provider.script(text("web-3 is slow because its disk is full"))
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    output = await run.ask("why is web-3 slow?", streamed=streamed)

    assert output == "web-3 is slow because its disk is full"
    [request] = mock_provider.requests
    assert request.path == _endpoint(model_id)
    assert request.body["model"] == model_id.partition(":")[2]
    assert bool(request.body.get("stream")) is streamed
    assert "why is web-3 slow?" in request.text
    if streamed:
        assert len(run.deltas) > 1
        assert "".join(run.deltas) == output


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_tool_call_then_answer(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    mock_provider.script(tool_calls(call("disk_usage", path="/var")), text("/var is 91% full"))
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    output = await run.ask("is the disk full?", streamed=streamed)

    assert output == "/var is 91% full"
    assert run.calls == [("disk_usage", "/var")]
    first, second = mock_provider.requests
    assert {t.get("name") or t["function"]["name"] for t in first.body["tools"]} >= {
        "disk_usage",
        "count_lines",
    }
    assert "/var: 91% used" in second.text  # the tool result went back to the provider


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_parallel_tool_calls(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    mock_provider.script(
        tool_calls(call("disk_usage", path="/var"), call("count_lines", unit="nginx", lines=7)),
        text("both checked"),
    )
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    assert await run.ask("check disk and logs", streamed=streamed) == "both checked"

    assert sorted(run.calls) == [("count_lines", 7), ("disk_usage", "/var")]
    assert len(mock_provider.requests) == 2
    second = mock_provider.requests[1].text
    assert "/var: 91% used" in second
    assert "nginx: 7 lines" in second


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_structured_output_through_a_tool_call(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    report = {"summary": "disk full", "findings": [{"title": "/var", "evidence": "91% used"}]}
    mock_provider.script(tool_calls(call("final_result", **report)))
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)), output_type=Report)

    output = await run.ask("investigate web-3", streamed=streamed)

    assert output == Report.model_validate(report)


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_wrong_argument_types_go_back_as_a_retry(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    mock_provider.script(
        tool_calls(call("count_lines", unit="nginx", lines="many")),
        tool_calls(call("count_lines", unit="nginx", lines=12)),
        text("12 lines"),
    )
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    assert await run.ask("how many lines?", streamed=streamed) == "12 lines"

    assert run.calls == [("count_lines", 12)]  # the malformed call never ran
    retry = mock_provider.requests[1].text
    assert "lines" in retry
    assert "valid integer" in retry  # the validation error reached the model


@pytest.mark.parametrize(
    ("model_id", "streamed"),
    [
        pytest.param("openai:gpt-4.1", False, id="openai-whole"),
        pytest.param("openai:gpt-4.1", True, id="openai-streamed"),
        pytest.param("anthropic:claude-sonnet-4-6", True, id="anthropic-streamed"),
    ],
)
async def test_invalid_json_arguments_go_back_as_a_retry(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    mock_provider.script(
        tool_calls(raw_call("disk_usage", '{"path": "/var", ')),
        tool_calls(call("disk_usage", path="/var")),
        text("done"),
    )
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    assert await run.ask("disk?", streamed=streamed) == "done"

    assert run.calls == [("disk_usage", "/var")]
    retry = mock_provider.requests[1].text
    assert "Invalid JSON: EOF while parsing" in retry  # the parse error reached the model


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_429_waits_for_retry_after_then_succeeds(
    mock_provider: MockProvider, tmp_path: Path, model_id: str
):
    mock_provider.script(status(429, "slow down", retry_after="1"), text("ok"))
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    assert await run.ask("hi", streamed=False) == "ok"

    first, second = mock_provider.requests
    assert second.at - first.at >= 1.0
    assert second.text == first.text


async def test_retry_after_as_an_http_date_is_honoured():
    headers = httpx2.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"})
    from datetime import UTC, datetime

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(headers, now) == 30.0
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(httpx2.Headers({"Retry-After": "soon"})) is None


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_500_twice_then_success(mock_provider: MockProvider, tmp_path: Path, model_id: str):
    mock_provider.script(status(500), status(503), text("recovered"))
    run = Run(build_model(_settings(tmp_path, mock_provider, model_id)))

    assert await run.ask("hi", streamed=True) == "recovered"
    assert len(mock_provider.requests) == 3


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_persistent_500_gives_a_clear_error(
    mock_provider: MockProvider, tmp_path: Path, model_id: str
):
    settings = _settings(tmp_path, mock_provider, model_id, llm_max_retries=2)
    mock_provider.script(*[status(500, "the GPUs are on fire")] * 3)
    run = Run(build_model(settings))

    with pytest.raises(MODEL_FAILURES) as caught:
        await run.ask("hi", streamed=False)

    error = explain_model_failure(caught.value, settings)
    message = str(error.detail)
    assert error.status_code == 503
    assert f"model provider {model_id.partition(':')[0]}" in message
    assert "HTTP 500" in message
    assert "after 3 attempts" in message
    assert "the GPUs are on fire" in message
    assert "Traceback" not in message
    assert len(mock_provider.requests) == 3


async def test_retry_after_beyond_the_cap_stops_at_once(
    mock_provider: MockProvider, tmp_path: Path
):
    settings = _settings(tmp_path, mock_provider, "openai:gpt-4.1", llm_retry_max_delay=2.0)
    mock_provider.script(status(429, "quota window", retry_after="3600"), text("never sent"))
    run = Run(build_model(settings))

    with pytest.raises(MODEL_FAILURES) as caught:
        await run.ask("hi", streamed=False)

    message = str(explain_model_failure(caught.value, settings).detail)
    assert "HTTP 429" in message
    assert "wait 3600 s" in message
    assert len(mock_provider.requests) == 1


@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_a_hang_ends_in_a_clear_error_within_the_timeout(
    mock_provider: MockProvider, tmp_path: Path, model_id: str
):
    settings = _settings(tmp_path, mock_provider, model_id, llm_timeout=0.5)
    mock_provider.script(hang(30))
    run = Run(build_model(settings))
    started = time.monotonic()

    with pytest.raises(MODEL_FAILURES) as caught:
        await run.ask("hi", streamed=False)

    assert time.monotonic() - started < 20  # the client gave up long before the hang ended
    message = str(explain_model_failure(caught.value, settings).detail)
    assert "did not answer within 0.5 s" in message
    assert len(mock_provider.requests) == 1  # a hang is not retried: one timeout, not three


@pytest.mark.parametrize("streamed", MODES)
@pytest.mark.parametrize("model_id", PROVIDERS)
async def test_a_cut_stream_gives_a_clear_error(
    mock_provider: MockProvider, tmp_path: Path, model_id: str, streamed: bool
):
    settings = _settings(tmp_path, mock_provider, model_id)
    mock_provider.script(cut_stream())
    run = Run(build_model(settings))

    with pytest.raises(MODEL_FAILURES) as caught:
        await run.ask("hi", streamed=streamed)

    message = str(explain_model_failure(caught.value, settings).detail)
    assert model_id.partition(":")[0] in message
    assert "broke" in message


async def test_fallback_model_answers_when_the_main_one_fails(
    mock_provider: MockProvider, tmp_path: Path
):
    settings = _settings(
        tmp_path,
        mock_provider,
        "openai:big-model",
        llm_max_retries=1,
        llm_fallback_model="anthropic:claude-haiku-4-5",
        llm_fallback_base_url=mock_provider.url,
        llm_fallback_api_key="sk-ant-mock",
    )
    mock_provider.script(status(503), status(503), text("answered by the fallback"))
    model = build_model(settings)
    assert isinstance(model, FallbackModel)

    assert await Run(model).ask("hi", streamed=False) == "answered by the fallback"

    paths = [(r.path, r.body["model"]) for r in mock_provider.requests]
    assert paths == [
        ("/v1/chat/completions", "big-model"),
        ("/v1/chat/completions", "big-model"),
        ("/v1/messages", "claude-haiku-4-5"),
    ]
    assert "sk-ant-mock" in str(mock_provider.requests[2].headers)  # the fallback's own key


async def test_when_every_model_fails_the_error_names_each(
    mock_provider: MockProvider, tmp_path: Path
):
    settings = _settings(
        tmp_path,
        mock_provider,
        "openai:big-model",
        llm_max_retries=0,
        llm_fallback_model="openai:small-model",
    )
    mock_provider.script(status(500, "big is down"), status(401, "bad key"))

    with pytest.raises(MODEL_FAILURES) as caught:
        await Run(build_model(settings)).ask("hi", streamed=False)

    message = str(explain_model_failure(caught.value, settings).detail)
    assert "every configured model failed" in message
    assert "big-model" in message
    assert "HTTP 500" in message
    assert "small-model" in message
    assert "HTTP 401" in message
    assert "TEND_LLM_API_KEY" in message
    # the fallback used the main model's base URL and key (same provider)
    assert mock_provider.requests[1].headers["authorization"] == "Bearer sk-mock-key"


def test_no_model_configured_says_how_to_configure(tmp_path: Path):
    with pytest.raises(AssistantNotConfigured) as caught:
        build_model(make_settings(tmp_path))
    assert caught.value.status_code == 503
    detail = str(caught.value.detail)
    assert "TEND_LLM_MODEL" in detail
    assert "TEND_LLM_API_KEY" in detail
    assert "TEND_LLM_BASE_URL" in detail
    assert "anthropic:claude-sonnet-4-6" in detail


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"llm_model": "gpt-4.1"}, "not in the form provider:model"),
        ({"llm_model": "openai:gpt-4.1"}, "needs an API key"),
        ({"llm_model": "anthropic:claude-sonnet-4-6"}, "needs an API key"),
        ({"llm_model": "vllm:qwen2.5"}, "TEND_LLM_BASE_URL must say where"),
        (
            {"llm_model": "ollama:llama3.1", "llm_fallback_model": "openai:gpt-4.1"},
            "TEND_LLM_FALLBACK_API_KEY is not set",
        ),
    ],
)
def test_unusable_configuration_is_explained(
    tmp_path: Path, overrides: dict[str, Any], problem: str
):
    with pytest.raises(AssistantNotConfigured) as caught:
        build_model(make_settings(tmp_path, **overrides))
    assert problem in str(caught.value.detail)
    assert "TEND_LLM_MODEL=" in str(caught.value.detail)


@pytest.mark.parametrize(
    "model_id", ["openai:gpt-4.1", "ollama:llama3.1:8b", "vllm:Qwen/Qwen2.5-7B-Instruct"]
)
async def test_a_base_url_means_chat_completions(
    mock_provider: MockProvider, tmp_path: Path, model_id: str
):
    settings = make_settings(
        tmp_path, llm_model=model_id, llm_base_url=mock_provider.openai_url, llm_retry_backoff=0
    )
    model = build_model(settings)
    assert isinstance(model, OpenAIChatModel)
    mock_provider.script(text("hello"))

    assert await Run(model).ask("hi", streamed=False) == "hello"

    [request] = mock_provider.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == model_id.partition(":")[2]
    assert "messages" in request.body


def test_anthropic_speaks_the_messages_api(tmp_path: Path):
    model = build_model(
        make_settings(tmp_path, llm_model="anthropic:claude-sonnet-4-6", llm_api_key="sk-ant")
    )
    assert isinstance(model, AnthropicModel)
    assert model.base_url.startswith("https://api.anthropic.com")


def test_context_tokens_known_configured_and_default(tmp_path: Path):
    plain = make_settings(tmp_path)
    assert model_context_tokens(plain, "openai:gpt-4.1") >= 1_000_000
    assert model_context_tokens(plain, "anthropic:claude-haiku-4-5") == 200_000
    assert model_context_tokens(plain, "ollama:llama3.1:8b") == 8_192
    assert model_context_tokens(plain, "vllm:Qwen/Qwen2.5-7B-Instruct") == 32_768
    assert model_context_tokens(plain, "mystery:model-x") == 32_000
    configured = make_settings(tmp_path, llm_context_tokens=65_536)
    assert model_context_tokens(configured, "openai:gpt-4.1") == 65_536


def test_price_when_known():
    usage = RunUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    gpt = price_of(usage, "openai:gpt-4.1")
    assert gpt is not None
    assert gpt > 0
    assert price_of(RunUsage(input_tokens=2_000_000, output_tokens=2_000_000), "gpt-4.1") == (
        pytest.approx(2 * gpt)
    )
    assert price_of(usage, "ollama:llama3.1") is None
    assert price_of(usage, "openai:no-such-model") is None


async def test_a_connection_refused_is_retried_then_explained(tmp_path: Path):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    transport = RetryingTransport(max_retries=2, backoff=0.5, max_delay=30, sleep=sleep)
    async with httpx2.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.post("http://127.0.0.1:9/v1/chat/completions", json={})
    assert len(slept) == 2
    assert 0.25 <= slept[0] <= 0.5
    assert 0.5 <= slept[1] <= 1.0


async def test_no_test_can_reach_a_real_provider(tmp_path: Path):
    settings = make_settings(
        tmp_path, llm_model="openai:gpt-4.1", llm_api_key="sk-real-looking", llm_max_retries=0
    )
    with pytest.raises(RuntimeError, match="ALLOW_MODEL_REQUESTS"):
        await Run(build_model(settings)).ask("hi", streamed=False)

    with override_allow_model_requests(True), pytest.raises(MODEL_FAILURES) as caught:
        await Run(build_model(settings)).ask("hi", streamed=False)
    message = str(explain_model_failure(caught.value, settings).detail)
    assert "could not reach the model provider openai" in message
    assert "only reach loopback hosts, not 'api.openai.com'" in message
