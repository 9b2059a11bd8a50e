"""Dense logic tested directly: login throttle windows, log formatting, error rendering."""

from __future__ import annotations

import json
import logging

import pytest

from tend.auth.throttle import LoginThrottle
from tend.errors import RateLimited
from tend.log import JsonFormatter, RequestIdFilter, TextFormatter, request_id_var


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_window_slides() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=3, per_client=100, window=60, clock=clock)
    for _ in range(3):
        throttle.check("alice", "1.2.3.4")
        throttle.record_failure("Alice", "1.2.3.4")
        clock.now += 10
    with pytest.raises(RateLimited) as caught:
        throttle.check("ALICE", "5.6.7.8")
    assert caught.value.headers["Retry-After"] == "30"
    clock.now += 31
    throttle.check("alice", "1.2.3.4")  # the oldest failure left the window


def test_throttle_per_client_and_success_reset() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=2, per_client=3, window=60, clock=clock)
    for name in ("a", "b", "c"):
        throttle.record_failure(name, "9.9.9.9")
    with pytest.raises(RateLimited):
        throttle.check("d", "9.9.9.9")
    throttle.check("d", "8.8.8.8")
    throttle.record_failure("e", "7.7.7.7")
    throttle.record_success("e")
    throttle.record_failure("e", "6.6.6.6")
    throttle.check("e", "5.5.5.5")


def test_throttle_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import tend.auth.throttle as module

    monkeypatch.setattr(module, "_MAX_KEYS", 50)
    clock = Clock()
    throttle = LoginThrottle(per_user=2, per_client=10_000, window=60, clock=clock)
    for i in range(500):
        throttle.record_failure(f"user{i}", "1.1.1.1")
    assert len(throttle._users.failures) <= 50


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("tend.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    return record


def test_json_log_lines_carry_request_id_and_extras() -> None:
    token = request_id_var.set("req-42")
    try:
        line = JsonFormatter().format(_record(host="web-1"))
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "hello x"
    assert entry["level"] == "warning"
    assert entry["request_id"] == "req-42"
    assert entry["host"] == "web-1"


def test_text_log_lines_are_readable() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = _record(status=500)
        record.exc_info = sys.exc_info()
    line = TextFormatter().format(record)
    assert "WARNING" in line
    assert "[-]" in line
    assert "status=500" in line
    assert "ValueError: bad" in line
