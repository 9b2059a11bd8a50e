"""The context capability, asserted on what a FunctionModel actually receives.

Secrets never reach the model; host names can be swapped for pseudonyms and back; tool outputs are
cut to their share with the whole kept under a handle; older turns are summarised before the
window fills, never separating a tool call from its return; a 50 MB log does not blow the context.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    BaseToolCallPart,
    BaseToolReturnPart,
    CompactionPart,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from tend.assistant.compaction import Compactor, valid_boundaries
from tend.assistant.context import ContextCapability
from tend.assistant.llm import build_model
from tend.assistant.outputs import OutputOwner, OutputStore
from tend.assistant.redact import Redactor
from tend.assistant.tokens import ContextBudget, TokenCounter, estimate_request, estimate_tokens
from tend.auth.models import User
from tend.db import Database
from tend.migrate import upgrade_database
from tend.settings import Settings
from tests.assistant.mock_provider import MockProvider
from tests.assistant.mock_provider import call as mock_call
from tests.assistant.mock_provider import text as mock_text
from tests.assistant.mock_provider import tool_calls as mock_tool_calls
from tests.conftest import make_settings

NOTE = re.compile(
    r"\[… (?P<size>[\d.]+ [kMG]?B) / (?P<lines>[\d,]+) lines removed; "
    r'page with read_output\(handle="(?P<handle>\w+)", offset=(?P<offset>\d+)\)\]'
)


class Recorder:
    """A scripted model: replies from a list, and remembers every request it received."""

    def __init__(self, *replies: ModelResponse) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[list[ModelMessage], AgentInfo]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append((messages, info))
        if self.replies:
            return self.replies.pop(0)
        return ModelResponse(parts=[TextPart("done")])

    def sent(self, index: int) -> str:
        """Everything the model saw in request ``index``, as text."""
        messages, info = self.requests[index]
        return ModelMessagesTypeAdapter.dump_json(messages).decode() + (info.instructions or "")

    def tokens(self, index: int) -> int:
        messages, info = self.requests[index]
        tools = [*info.function_tools, *info.output_tools]
        return estimate_request(messages, instructions=info.instructions, tools=tools)


def call(tool: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(tool, args)])


def pairs_intact(messages: list[ModelMessage]) -> bool:
    calls = [p.tool_call_id for m in messages for p in m.parts if isinstance(p, BaseToolCallPart)]
    returns = [
        p.tool_call_id for m in messages for p in m.parts if isinstance(p, BaseToolReturnPart)
    ]
    # every return answers a call the model sees; every call but the newest response's is answered
    last_calls = {p.tool_call_id for p in messages[-1].parts if isinstance(p, BaseToolCallPart)}
    return set(returns) <= set(calls) and set(calls) - last_calls <= set(returns)


# --- budget and estimates ---


def test_budget_shares_out_the_window(tmp_path: Path) -> None:
    budget = ContextBudget(128_000, reserve_for_output=8000, tool_output_share=0.2)
    assert budget.input_tokens == 120_000
    assert budget.tool_output_tokens == 24_000
    assert budget.compaction_threshold == 96_000
    assert budget.compaction_target == 60_000
    configured = ContextBudget.from_settings(make_settings(tmp_path), 200_000)
    assert configured.reserve_for_output == 8192  # llm_max_output_tokens
    assert configured.tool_output_tokens == int((200_000 - 8192) * 0.2)
    assert ContextBudget.from_settings(make_settings(tmp_path), 8192).reserve_for_output == 2048
    small = ContextBudget.for_window(8192)
    assert small.reserve_for_output == 1024
    assert small.input_tokens == 7168
    with pytest.raises(ValueError, match="reserve_for_output"):
        ContextBudget(4096, reserve_for_output=4000)
    with pytest.raises(ValueError, match="tool_output_share"):
        ContextBudget(4096, reserve_for_output=1000, tool_output_share=0.9)


def test_estimates_count_dense_logs_higher_than_prose() -> None:
    prose = "the quick brown fox jumps over the lazy dog " * 100
    log = "2026-11-26T10:00:01.123Z 10.0.0.5:443 -> 10.0.0.6:5432 rc=0 0.012s\n" * 66
    assert abs(len(prose) - len(log)) < 300
    assert estimate_tokens(log) > 1.5 * estimate_tokens(prose)
    assert estimate_tokens(prose) >= len(prose) / 5  # never far under a real tokenizer
    huge = log * 2000
    assert estimate_tokens(huge) == pytest.approx(2000 * estimate_tokens(log), rel=0.05)


# --- redaction of everything sent ---


async def test_the_model_never_sees_a_secret() -> None:
    secrets = [
        "instr-pw-3141",
        "AKIAIOSFODNN7EXAMPLE",
        "hunter2-user",
        "pg-secret-2718",
        "dict-pw-1618",
        "arg-token-5772",
    ]
    model = Recorder(
        ModelResponse(
            parts=[
                ToolCallPart("read_config", {}),
                ToolCallPart("lookup", {"api_token": "arg-token-5772"}),
            ]
        ),
        ModelResponse(parts=[TextPart("Your password: hunter2-user is weak")]),
    )
    agent = Agent(
        FunctionModel(model),
        system_prompt="You help ops. Cloud key on file: AKIAIOSFODNN7EXAMPLE",
        instructions="Never print password=instr-pw-3141",
        capabilities=[ContextCapability(ContextBudget(32_000, 4000))],
    )

    @agent.tool_plain
    def read_config() -> str:
        """Read the config."""
        return "DATABASE_URL=postgresql://app:pg-secret-2718@db1/app\nworkers: 4\n"

    @agent.tool_plain
    def lookup(api_token: str) -> dict[str, Any]:
        """Look something up."""
        return {"status": "success", "settings": {"password": "dict-pw-1618", "port": 5432}}

    result = await agent.run("My login is password: hunter2-user, why does the app fail?")
    await agent.run("and now?", message_history=result.all_messages())
    assert len(model.requests) == 3
    for index in range(3):
        sent = model.sent(index)
        for secret in secrets:
            assert secret not in sent, (index, secret)
        assert "[REDACTED:" in sent
    last = model.sent(2)
    assert "[REDACTED:connection_string]" in last
    assert "[REDACTED:password]" in last
    assert "workers: 4" in last
    assert "5432" in last
    assert "Your password: [REDACTED:password]" in last
    # The run's own transcript keeps what really happened.
    transcript = ModelMessagesTypeAdapter.dump_json(result.all_messages()).decode()
    assert "pg-secret-2718" in transcript


async def test_hosts_are_pseudonyms_for_the_model_and_real_for_tools() -> None:
    redactor = Redactor(anonymise=True, known_hosts=["web-3", "db1"])
    seen_by_tool: list[str] = []

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        sent = ModelMessagesTypeAdapter.dump_json(messages).decode()
        assert "web-3" not in sent
        assert "10.0.0.5" not in sent
        assert "db1" not in sent
        if len(messages) == 1:
            assert "host-1" in sent
            assert "10.255.0.1" in sent
            return call("load", host="host-1")
        assert (
            "host-1 load 9.5, db1 is host-2" not in sent
        )  # the tool's real answer is anonymised...
        assert "host-1 load 9.5" in sent  # ...into the same pseudonyms
        return ModelResponse(parts=[TextPart("host-1 (10.255.0.1) is overloaded")])

    agent = Agent(
        FunctionModel(script),
        capabilities=[ContextCapability(ContextBudget(32_000, 4000), redactor)],
    )

    @agent.tool_plain
    def load(host: str) -> str:
        """Load of a host."""
        seen_by_tool.append(host)
        return f"{host} load 9.5, talks to db1"

    result = await agent.run("why is web-3 (10.0.0.5) slow?")
    assert seen_by_tool == ["web-3"]
    assert redactor.restore(result.output) == "web-3 (10.0.0.5) is overloaded"


# --- tool outputs over their share ---


async def test_a_structured_result_has_only_its_long_strings_cut() -> None:
    model = Recorder(call("logs"))
    budget = ContextBudget(8192, 1024, tool_output_share=0.2)
    agent = Agent(FunctionModel(model), capabilities=[ContextCapability(budget)])

    @agent.tool_plain
    def logs() -> dict[str, Any]:
        """Logs."""
        return {"status": "success", "host": "web-3", "output": "line of log output 123\n" * 20_000}

    await agent.run("show logs")
    messages, _ = model.requests[1]
    [returned] = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    assert returned.content["status"] == "success"
    assert returned.content["host"] == "web-3"
    assert "lines removed" in returned.content["output"]
    assert TokenCounter().value(returned.content) <= budget.tool_output_tokens


async def test_a_huge_output_already_in_the_history_is_cut_to_the_window() -> None:
    history: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("read the file")]),
        ModelResponse(parts=[ToolCallPart("cat", {}, tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("cat", "data line 42\n" * 100_000, tool_call_id="c1")]),
    ]
    model = Recorder()
    budget = ContextBudget(16_000, 2000)
    capability = ContextCapability(budget, summariser=_no_summary)
    agent = Agent(FunctionModel(model), capabilities=[capability])
    await agent.run(None, message_history=history)  # continue from the stored tool result
    assert model.tokens(0) <= budget.input_tokens
    assert "the full output was not kept" in model.sent(0)
    assert "read the file" in model.sent(0)


async def _no_summary(transcript: str) -> str:
    raise AssertionError("no compaction expected")


# --- compaction ---


class Summariser:
    def __init__(self) -> None:
        self.transcripts: list[str] = []

    async def __call__(self, transcript: str) -> str:
        self.transcripts.append(transcript)
        return f"SUMMARY #{len(self.transcripts)}: looked at disks and logs of web-3"


def old_turns(count: int, *, size: int = 60) -> list[ModelMessage]:
    history: list[ModelMessage] = []
    for turn in range(count):
        history += [
            ModelRequest(parts=[UserPromptPart(f"question {turn}")]),
            ModelResponse(parts=[ToolCallPart("df", {"host": "web-3"}, tool_call_id=f"t{turn}")]),
            ModelRequest(
                parts=[
                    ToolReturnPart(
                        "df",
                        f"turn {turn} password=old-pw-{turn}\n" + "disk usage 80%\n" * size,
                        tool_call_id=f"t{turn}",
                    )
                ]
            ),
            ModelResponse(parts=[TextPart(f"answer {turn}")]),
        ]
    return history


async def test_older_turns_are_summarised_before_the_window_fills() -> None:
    budget = ContextBudget(4096, 1024)
    summariser = Summariser()
    compactor = Compactor(budget, summariser, Redactor().redact)
    model = Recorder()
    agent = Agent(
        FunctionModel(model),
        system_prompt="You are tend.",
        capabilities=[ContextCapability(budget, summariser=summariser, compactor=compactor)],
    )
    history = [ModelRequest(parts=[SystemPromptPart("You are tend.")]), *old_turns(12)]
    history[1] = ModelRequest(parts=[SystemPromptPart("You are tend."), *history[1].parts])
    del history[0]
    result = await agent.run("latest question", message_history=history)

    assert len(summariser.transcripts) == 1
    transcript = summariser.transcripts[0]
    assert "question 0" in transcript
    assert "turn 0" in transcript
    assert "old-pw-" not in transcript  # the summariser is a provider too
    messages, _ = model.requests[0]
    first = messages[0]
    assert isinstance(first, ModelRequest)
    assert any(
        isinstance(p, SystemPromptPart) and p.content == "You are tend." for p in first.parts
    )
    assert any(
        isinstance(p, CompactionPart) and "SUMMARY #1" in (p.content or "") for p in first.parts
    )
    assert isinstance(messages[-1], ModelRequest)
    assert any(
        isinstance(p, UserPromptPart) and p.content == "latest question" for p in messages[-1].parts
    )
    assert "question 11" in model.sent(0)  # the most recent turns are verbatim
    assert "question 0" not in model.sent(0)
    assert pairs_intact(messages)
    assert model.tokens(0) <= budget.compaction_threshold
    # The transcript itself is never rewritten.
    assert len(result.all_messages()) == len(history) + 2

    # The next turn reuses the summary while the window allows it.
    again = Recorder()
    agent2 = Agent(
        FunctionModel(again),
        system_prompt="You are tend.",
        capabilities=[ContextCapability(budget, summariser=summariser, compactor=compactor)],
    )
    await agent2.run("one more", message_history=result.all_messages())
    assert len(summariser.transcripts) == 1
    assert "SUMMARY #1" in again.sent(0)


@pytest.mark.parametrize("window", [2048, 3000, 5000])
async def test_a_long_run_keeps_its_question_and_every_call_with_its_return(window: int) -> None:
    budget = ContextBudget(window, 512)
    summariser = Summariser()
    steps = 14

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        step = len(model.requests)
        model.requests.append((messages, info))
        if step < steps:
            return ModelResponse(
                parts=[
                    ToolCallPart("probe", {"n": step, "what": "cpu"}),
                    ToolCallPart("probe", {"n": step, "what": "disk"}),
                ]
            )
        return ModelResponse(parts=[TextPart("done")])

    model = Recorder()
    agent = Agent(
        FunctionModel(script), capabilities=[ContextCapability(budget, summariser=summariser)]
    )

    @agent.tool_plain
    def probe(n: int, what: str) -> str:
        """Probe."""
        return f"probe {n} {what}: " + "value 42 ok\n" * 40

    await agent.run("investigate web-3 thoroughly")
    assert summariser.transcripts, "the run outgrew the window, so something was summarised"
    for index, (messages, _) in enumerate(model.requests):
        assert pairs_intact(messages), index
        assert any(
            isinstance(p, UserPromptPart) and p.content == "investigate web-3 thoroughly"
            for m in messages
            for p in m.parts
        ), index
        assert model.tokens(index) <= budget.input_tokens, index


def test_boundaries_never_fall_between_a_call_and_its_return() -> None:
    history = old_turns(3)
    assert valid_boundaries(history) == [1, 3, 4, 5, 7, 8, 9, 11]


# --- a 50 MB log ---


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    await upgrade_database(db)
    yield db
    await db.dispose()


async def test_a_50_mb_log_does_not_blow_the_context(database: Database) -> None:
    async with database.session() as session:
        user = User(username="alice", password_hash="-", role="operator")
        session.add(user)
        await session.flush()
        user_id = user.id
    lines = [
        f"Nov 26 10:{i // 60 % 60:02d}:{i % 60:02d} web-3 app[42]: request {i} ok in {i % 97} ms\n"
        for i in range(900_000)
    ]
    lines[450_000] = "Nov 26 11:15:00 web-3 app[42]: FATAL the needle in the middle\n"
    log = "".join(lines)
    del lines
    assert len(log) > 50_000_000
    budget = ContextBudget(32_000, 4000, tool_output_share=0.2)
    store = OutputStore(database)
    owner = OutputOwner(user_id, "conv-50mb")
    model = Recorder(call("read_log", path="/var/log/app.log"))
    capability = ContextCapability(budget, store=store, owner=owner, summariser=_no_summary)
    agent = Agent(FunctionModel(model), capabilities=[capability])

    @agent.tool_plain
    def read_log(path: str) -> str:
        """Read a log file."""
        return log

    await agent.run("what is in /var/log/app.log?")
    sent = model.sent(1)
    assert model.tokens(1) <= budget.input_tokens
    assert len(sent) // 2 <= budget.input_tokens  # under budget even at 2 characters a token
    [cut] = [
        p.content for m in model.requests[1][0] for p in m.parts if isinstance(p, ToolReturnPart)
    ]
    note = NOTE.search(cut)
    assert note is not None, cut[:2000]
    assert "request 899999 ok" in sent
    assert "request 0 ok" in sent
    assert "needle" not in sent
    assert note["size"].endswith("MB")
    assert float(note["size"].split()[0]) > 45

    # Paging the handle from the note's offset returns the removed middle, needle included.
    [cut] = [
        p.content for m in model.requests[1][0] for p in m.parts if isinstance(p, ToolReturnPart)
    ]
    head, tail = cut.split(note.group() + "\n")
    assert log.startswith(head)
    assert log.endswith(tail)
    handle, offset = note["handle"], int(note["offset"])
    assert offset == len(head)
    tail_start = len(log) - len(tail)
    pager = OutputStore(database, max_page_bytes=4 * 1024 * 1024)
    middle = []
    at: int | None = offset
    while at is not None and at < tail_start:
        page = await pager.page(handle, user_id=user_id, offset=at, conversation_id="conv-50mb")
        middle.append(page.text)
        at = page.next_offset
    removed = "".join(middle)[: tail_start - offset]
    assert removed == log[offset:tail_start]
    assert int(note["lines"].replace(",", "")) == removed.count("\n")
    assert "FATAL the needle in the middle" in removed

    # The model can page it too, and a page stays within one output's share.
    model2 = Recorder(call("read_output", handle=handle, offset=offset))
    agent2 = Agent(
        FunctionModel(model2),
        capabilities=[ContextCapability(budget, store=store, owner=owner, summariser=_no_summary)],
    )
    await agent2.run("show me the removed part")
    returned = [p for m in model2.requests[1][0] for p in m.parts if isinstance(p, ToolReturnPart)]
    page_result = returned[-1].content
    assert page_result["status"] == "success"
    assert page_result["offset"] == offset
    assert estimate_tokens(page_result["text"]) <= budget.tool_output_tokens
    assert log[offset:].startswith(page_result["text"])
    assert model2.tokens(1) <= budget.input_tokens

    # Another user cannot page it.
    other = ContextCapability(budget, store=store, owner=OutputOwner(user_id + 1000, "conv-50mb"))
    assert (await other.read_output(handle, offset))["status"] == "error"


# --- through the real provider clients ---


@pytest.mark.parametrize("model_id", ["openai:gpt-4.1", "anthropic:claude-sonnet-4-6"])
async def test_provider_bodies_are_compacted_and_clean(
    mock_provider: MockProvider, tmp_path: Path, model_id: str
) -> None:
    """The real OpenAI / Anthropic client code: the summary is asked of the same model, and no
    request body carries a secret, an old turn verbatim, or more than the budget."""
    settings = make_settings(tmp_path, **mock_provider.settings(model_id))
    budget = ContextBudget(4096, 1024)
    mock_provider.script(
        mock_text("SUMMARY-FROM-MODEL: web-3 disks were checked"),
        mock_tool_calls(mock_call("read_env")),
        mock_text("web-3 is fine"),
    )
    agent = Agent(build_model(settings), capabilities=[ContextCapability(budget)])

    @agent.tool_plain
    def read_env() -> str:
        """Read the service environment."""
        return "REDIS_URL=redis://:cache-pw-4242@cache:6379\n" + "LANG=C.UTF-8\n" * 400

    result = await agent.run("is web-3 fine now?", message_history=old_turns(12))
    assert result.output == "web-3 is fine"
    summary_request, first, second = mock_provider.requests
    assert "turn 0" in summary_request.text  # the older turns went to the summariser...
    for request in (summary_request, first, second):
        assert "old-pw-" not in request.text
        assert "cache-pw-4242" not in request.text
    for request in (first, second):
        assert "SUMMARY-FROM-MODEL" in request.text
        assert "question 0" not in request.text  # ...and not to the model verbatim
        assert "is web-3 fine now?" in request.text
        assert len(request.text) // 2 <= budget.input_tokens
    assert "[REDACTED:connection_string]" in second.text
