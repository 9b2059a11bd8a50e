"""Database table of diagnostics: what baseline analyzers remember about a host between checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base, utcnow


class DiagnosticsBaseline(Base):
    """One analyzer's memory of one host (e.g. the listening ports seen on the last check)."""

    __tablename__ = "diagnostics_baselines"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    analyzer: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
