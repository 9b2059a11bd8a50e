"""Time arithmetic inside SQL, written once per dialect: epoch seconds and bucket starts.

Rollups and series queries group rows by time bucket in the database, so a month of samples is
never loaded into Python. SQLite stores ``UTCDateTime`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` text
(in UTC) and PostgreSQL as ``timestamptz``; these constructs hide the difference.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import BigInteger, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from tend.db import UTCDateTime

TruncUnit = Literal["minute", "hour"]
TimeColumn = ColumnElement[Any] | QueryableAttribute[Any]


class epoch_seconds(FunctionElement[int]):  # noqa: N801 - reads like the SQL function it is
    """Whole seconds since 1970-01-01 UTC of a timestamp column (floored)."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"CAST(strftime('%s', {compiler.process(column, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(column, **kw)})) AS BIGINT)"


class truncate_ts(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it is
    """A timestamp column truncated to the start of its minute or hour, as a timestamp."""

    type = UTCDateTime()
    inherit_cache = True
    name = "truncate_ts"

    def __init__(self, column: TimeColumn, unit: TruncUnit) -> None:
        """Truncate ``column`` to ``unit``."""
        super().__init__(column)
        self.unit: TruncUnit = unit


_SQLITE_FORMAT = {"minute": "%Y-%m-%d %H:%M:00.000000", "hour": "%Y-%m-%d %H:00:00.000000"}


@compiles(truncate_ts, "sqlite")
def _truncate_sqlite(element: truncate_ts, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    # The same text layout SQLAlchemy writes for DateTime on SQLite, so comparisons still work.
    return f"strftime('{_SQLITE_FORMAT[element.unit]}', {compiler.process(column, **kw)})"


@compiles(truncate_ts, "postgresql")
def _truncate_postgresql(element: truncate_ts, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    # In UTC whatever the session's time zone is.
    inner = compiler.process(column, **kw)
    return f"(date_trunc('{element.unit}', {inner} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def bucket_start(column: TimeColumn, step: int) -> ColumnElement[int]:
    """Return the epoch second at which ``column``'s bucket of ``step`` seconds starts.

    Buckets are aligned to multiples of ``step`` since the epoch, so minute and hour rollups
    fall wholly inside one bucket whenever ``step`` is a multiple of their resolution.
    """
    # Inline the step (an int, checked here): PostgreSQL only matches a SELECT expression to its
    # GROUP BY twin when both are textually equal, which separate bind parameters are not.
    width = literal_column(str(int(step)), BigInteger())
    return (epoch_seconds(column) // width) * width
