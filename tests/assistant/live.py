"""A real tend server on a loopback port (uvicorn in a thread) for streaming and CLI tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from tend.app import create_app
from tend.settings import Settings
from tests.execution.sshd import free_port


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Serve tend on ``settings`` at a free port of 127.0.0.1; yields the base URL."""
    port = free_port("127.0.0.1")
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
