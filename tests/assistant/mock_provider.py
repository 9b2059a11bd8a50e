"""A scripted model provider on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats.

The real SDK client code (through pydantic-ai and tend's retrying transport) talks to it:
``POST /v1/chat/completions`` (Chat Completions) and ``POST /v1/messages`` (Anthropic Messages),
each streamed (server-sent events) when the request asks for it. A test scripts the replies in
order — text, tool calls (several = parallel), a final structured output as a tool call — and
faults: an HTTP status (429 with ``Retry-After``, 500...), a hang, a stream cut mid-response. Every
request is recorded (path, headers, JSON body, raw text, arrival time) for assertions.

It is a minimal HTTP/1.1 server on asyncio in the test's own event loop, so a fault is exact (the
socket is aborted mid-body) and teardown is bounded: every connection is closed and every handler
cancelled when the test ends. ``block_real_model_requests`` keeps the whole suite off real
providers: pydantic-ai's ``ALLOW_MODEL_REQUESTS`` is off outside this fixture, and the httpx/httpx2
network transports refuse any host that is not loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
import httpx2
import pytest
from pydantic_ai import models

from tests.assistant.mock_wire import (
    Fault,
    Reply,
    Step,
    ToolCall,
    call,
    cut_stream,
    error_body,
    hang,
    raw_call,
    render_anthropic,
    render_openai,
    status,
    text,
    tool_calls,
)

# The step constructors are part of this module's interface: tests import them from here.
__all__ = [
    "Fault",
    "MockProvider",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "block_real_model_requests",
    "call",
    "cut_stream",
    "hang",
    "mock_provider",
    "raw_call",
    "status",
    "text",
    "tool_calls",
]


@dataclass
class RecordedRequest:
    """A request the mock received."""

    method: str
    path: str
    headers: dict[str, str]
    text: str
    at: float  # time.monotonic() on arrival

    @property
    def body(self) -> Any:
        return json.loads(self.text) if self.text else None


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]  # one chunk for JSON, one per event for a stream
    stream: bool
    cut: bool = False


class MockProvider:
    """The scripted provider; see the module docstring. ``script()`` the replies, then run."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[Step] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The server root (the Anthropic base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``)."""
        return f"{self.url}/v1"

    def script(self, *steps: Step) -> None:
        """Queue replies; each request takes the next one, whichever endpoint it hits."""
        self._script.extend(steps)

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        return len(self._script)

    def settings(self, model: str = "openai:gpt-4.1", **overrides: Any) -> dict[str, Any]:
        """Settings fields pointing a tend model at this mock (fast retries, short timeout)."""
        provider = model.partition(":")[0]
        values: dict[str, Any] = {
            "llm_model": model,
            "llm_base_url": self.url if provider == "anthropic" else self.openai_url,
            "llm_api_key": "sk-mock-key",
            "llm_timeout": 5.0,
            "llm_max_retries": 2,
            "llm_retry_backoff": 0.01,
            "llm_retry_max_delay": 5.0,
        }
        values.update(overrides)
        return values

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server, every connection and every handler (bounded)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while await self._one_exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _one_exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        line = await reader.readline()
        if not line.strip():
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = RecordedRequest(method, path, headers, body.decode(), time.monotonic())
        self.requests.append(request)
        answer = await self._answer(request)
        if answer is None:  # a hang, now over: the connection just closes
            return False
        await self._write(writer, answer)
        return not answer.cut

    async def _answer(self, request: RecordedRequest) -> _Answer | None:
        path = request.path.split("?", 1)[0]
        if request.method != "POST" or not path.endswith(("/chat/completions", "/messages")):
            return _Answer(
                404, [("Content-Type", "application/json")], [b'{"error":"no route"}'], False
            )
        payload = request.body or {}
        stream = bool(payload.get("stream"))
        if not self._script:
            message = f"mock provider: no scripted reply left (request {len(self.requests)})"
            step: Step = status(500, message)
        else:
            step = self._script.popleft()
        if isinstance(step, Fault) and step.kind == "hang":
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Fault) and step.kind == "status":
            headers = [("Content-Type", "application/json"), *step.headers]
            return _Answer(
                step.status, headers, [error_body(path, step.status, step.message)], False
            )
        reply = step if isinstance(step, Reply) else Reply(text="this answer is cut off mid-way")
        render = render_anthropic if path.endswith("/messages") else render_openai
        chunks = render(reply, str(payload.get("model", "mock")), stream, request.text)
        kind = "text/event-stream" if stream else "application/json"
        cut = isinstance(step, Fault) and step.kind == "cut"
        return _Answer(200, [("Content-Type", kind)], chunks, stream, cut)

    async def _write(self, writer: asyncio.StreamWriter, answer: _Answer) -> None:
        reason = HTTPStatus(answer.status).phrase
        head = [f"HTTP/1.1 {answer.status} {reason}", *(f"{k}: {v}" for k, v in answer.headers)]
        body = b"".join(answer.chunks)
        if answer.stream:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if not answer.stream:
            writer.write(body[: len(body) // 2] if answer.cut else body)
        else:
            chunks = (
                answer.chunks[: max(1, len(answer.chunks) // 2)] if answer.cut else answer.chunks
            )
            for chunk in chunks:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            if not answer.cut:
                writer.write(b"0\r\n\r\n")
        await writer.drain()
        if answer.cut:
            writer.transport.abort()


# --- keeping the suite off real providers ---------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _guard(original: Any, error: type[Exception], is_async: bool) -> Any:
    def refuse(request: Any) -> None:
        host = request.url.host
        if not _is_loopback(host):
            msg = f"tests may only reach loopback hosts, not {host!r} (no real model provider)"
            raise error(msg, request=request)

    if is_async:

        async def guarded_async(self: Any, request: Any) -> Any:
            refuse(request)
            return await original(self, request)

        return guarded_async

    def guarded(self: Any, request: Any) -> Any:
        refuse(request)
        return original(self, request)

    return guarded


@contextlib.contextmanager
def block_real_model_requests() -> Iterator[None]:
    """Turn off pydantic-ai model requests and refuse HTTP to any host but loopback."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "ALLOW_MODEL_REQUESTS", False)
        for module in (httpx, httpx2):
            async_cls, sync_cls = module.AsyncHTTPTransport, module.HTTPTransport
            original_async = async_cls.handle_async_request
            original_sync = sync_cls.handle_request
            error = module.ConnectError
            patch.setattr(async_cls, "handle_async_request", _guard(original_async, error, True))
            patch.setattr(sync_cls, "handle_request", _guard(original_sync, error, False))
        yield


@pytest.fixture
async def mock_provider() -> AsyncIterator[MockProvider]:
    """A running scripted provider on 127.0.0.1; model requests are allowed while it runs."""
    provider = MockProvider()
    await provider.start()
    try:
        with models.override_allow_model_requests(True):
            yield provider
    finally:
        await provider.stop()
