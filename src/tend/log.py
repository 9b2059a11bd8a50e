"""Structured logging: JSON lines when not on a terminal, readable text when on one.

Every record carries the id of the request it belongs to (``-`` outside a request).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

request_id_var: ContextVar[str] = ContextVar("tend_request_id", default="-")

# Attributes every LogRecord has; anything else came through ``extra=`` and is logged as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "request_id", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach ``request_id`` to the record.

        Args:
            record: The record being logged.

        Returns:
            Always ``True``: the filter only annotates.
        """
        record.request_id = request_id_var.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as a JSON line.

        Args:
            record: The record.

        Returns:
            The JSON text.
        """
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Readable single lines for a terminal, extras appended as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as text.

        Args:
            record: The record.

        Returns:
            The line.
        """
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = (
            f"{when} {record.levelname:<7} [{getattr(record, 'request_id', '-')}] "
            f"{record.name}: {record.getMessage()}"
        )
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(level: str = "INFO", fmt: Literal["auto", "json", "text"] = "auto") -> None:
    """Install tend's handler on the root logger (idempotent).

    Args:
        level: Minimum level.
        fmt: ``json``, ``text`` or ``auto`` (JSON unless stderr is a terminal).
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.set_name("tend")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "tend":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("alembic", "httpx", "httpcore", "asyncssh"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # uvicorn's own access log is replaced by tend's, which carries the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
