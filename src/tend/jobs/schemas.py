"""Request and response models of background jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobPublic(BaseModel):
    """A job as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    params: dict[str, Any]
    queue: str
    state: JobState
    progress: float
    message: str | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    requested_by: str
    cancel_requested: bool
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobAccepted(BaseModel):
    """A job was queued (202)."""

    job_id: str
    state: JobState = "queued"


class JobEventPublic(BaseModel):
    """One event of a job."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime


class JobCreate(BaseModel):
    """Enqueue a job of a kind admins may start directly."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=128)
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.:-]*$")
