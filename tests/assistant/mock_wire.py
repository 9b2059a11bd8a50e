"""The wire side of the mock provider: scripted steps and how each is rendered.

A step is a :class:`Reply` (text and tool calls) or a :class:`Fault`. :func:`render_openai` and
:func:`render_anthropic` turn a reply into a Chat Completions or Anthropic Messages answer, whole
(one JSON body) or streamed (one server-sent event per chunk, tool arguments split over several
deltas); :func:`error_body` is an error answer in either format.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a reply; ``args`` as a string is sent verbatim (may be malformed)."""

    name: str
    args: dict[str, Any] | str

    def args_json(self) -> str:
        return self.args if isinstance(self.args, str) else json.dumps(self.args)


@dataclass(frozen=True)
class Reply:
    """A normal answer: optional text, then zero or more tool calls (parallel when several)."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class Fault:
    """A failure: ``status`` (an HTTP error answer), ``hang`` (no answer), ``cut`` (broken body)."""

    kind: str
    status: int = 500
    headers: tuple[tuple[str, str], ...] = ()
    message: str = "scripted failure"
    seconds: float = 30.0


Step = Reply | Fault


def text(content: str, **usage: int) -> Reply:
    """A text answer."""
    return Reply(text=content, **usage)


def call(name: str, /, **args: Any) -> ToolCall:
    """A tool call with JSON arguments."""
    return ToolCall(name, args)


def raw_call(name: str, raw_args: str) -> ToolCall:
    """A tool call whose arguments text is sent as given (e.g. invalid JSON)."""
    return ToolCall(name, raw_args)


def tool_calls(*calls: ToolCall, content: str = "") -> Reply:
    """A reply with one or several (parallel) tool calls."""
    return Reply(text=content, calls=calls)


def status(code: int, message: str = "scripted failure", retry_after: str | None = None) -> Fault:
    """Answer with HTTP ``code`` (and a ``Retry-After`` header when given)."""
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Fault("status", status=code, headers=headers, message=message)


def hang(seconds: float = 30.0) -> Fault:
    """Read the request and answer nothing for ``seconds`` (bounded; ends with the test)."""
    return Fault("hang", seconds=seconds)


def cut_stream() -> Fault:
    """Start a successful answer, then drop the connection in the middle of its body."""
    return Fault("cut")


_ids = itertools.count(1)


def _usage(step: Reply, request_text: str) -> tuple[int, int]:
    produced = step.text + "".join(c.name + c.args_json() for c in step.calls)
    inp = step.input_tokens if step.input_tokens is not None else max(1, len(request_text) // 4)
    out = step.output_tokens if step.output_tokens is not None else max(1, len(produced) // 4)
    return inp, out


def _pieces(value: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(value) // n))
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def render_openai(step: Reply, model: str, stream: bool, request_text: str) -> list[bytes]:
    rid, created = f"chatcmpl-{next(_ids)}", int(time.time())
    inp, out = _usage(step, request_text)
    usage = {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}
    ids = [f"call_{next(_ids)}" for _ in step.calls]
    finish = "tool_calls" if step.calls else "stop"
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
        if step.calls:
            message["tool_calls"] = [
                {
                    "id": i,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.args_json()},
                }
                for i, c in zip(ids, step.calls, strict=True)
            ]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        body = {"id": rid, "object": "chat.completion", "created": created, "model": model}
        return [json.dumps({**body, "choices": [choice], "usage": usage}).encode()]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        return _sse({**base, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _pieces(step.text) if step.text]
    for index, (cid, c) in enumerate(zip(ids, step.calls, strict=True)):
        start = {"index": index, "id": cid, "type": "function"}
        events.append(
            chunk({"tool_calls": [{**start, "function": {"name": c.name, "arguments": ""}}]})
        )
        for piece in _pieces(c.args_json()):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events.append(chunk({}, finish))
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
    events.append(_sse({**base, "choices": [], "usage": usage}))
    events.append(_sse("[DONE]"))
    return events


def _anthropic_input(c: ToolCall) -> Any:
    if not isinstance(c.args, str):
        return c.args
    try:
        return json.loads(c.args)
    except ValueError:
        return c.args


def render_anthropic(step: Reply, model: str, stream: bool, request_text: str) -> list[bytes]:
    mid = f"msg_{next(_ids)}"
    inp, out = _usage(step, request_text)
    ids = [f"toolu_{next(_ids)}" for _ in step.calls]
    stop = "tool_use" if step.calls else "end_turn"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": step.text}] if step.text else []
    blocks += [
        {"type": "tool_use", "id": i, "name": c.name, "input": _anthropic_input(c)}
        for i, c in zip(ids, step.calls, strict=True)
    ]
    message = {"id": mid, "type": "message", "role": "assistant", "model": model}
    if not stream:
        usage = {"input_tokens": inp, "output_tokens": out}
        end = {"stop_reason": stop, "stop_sequence": None, "usage": usage}
        return [json.dumps({**message, "content": blocks, **end}).encode()]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": inp, "output_tokens": 1}
    events = [_sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            opening, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": piece} for piece in _pieces(step.text)],
            )
        else:
            c = step.calls[index - (1 if step.text else 0)]
            opening = {"type": "tool_use", "id": block["id"], "name": c.name, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in _pieces(c.args_json())
            ]
        begin = {"type": "content_block_start", "index": index, "content_block": opening}
        events.append(_sse(begin, "content_block_start"))
        for delta in deltas:
            payload = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(_sse(payload, "content_block_delta"))
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": stop, "stop_sequence": None}
    ending = {"type": "message_delta", "delta": delta, "usage": {"output_tokens": out}}
    events.append(_sse(ending, "message_delta"))
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return events


_ANTHROPIC_ERRORS = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}


def error_body(path: str, code: int, message: str) -> bytes:
    if path.endswith("/messages"):
        kind = _ANTHROPIC_ERRORS.get(code, "api_error" if code >= 500 else "invalid_request_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    kind = "rate_limit_exceeded" if code == 429 else "server_error" if code >= 500 else "invalid"
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()
