"""Request and response models of the auth domain."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tend.auth.models import Role

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def _check_username(value: str) -> str:
    value = value.strip().lower()
    if not _USERNAME.match(value):
        msg = "must start with a letter and hold only a-z, 0-9, '_', '.', '-' (at most 64)"
        raise ValueError(msg)
    return value


Username = Annotated[str, AfterValidator(_check_username)]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


class Token(BaseModel):
    """An OAuth2 access token response."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    role: Role = Role.VIEWER


class UserUpdate(BaseModel):
    """Changes to a user; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    password: Password | None = None


class UserPublic(BaseModel):
    """A user as clients see it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime


class Me(UserPublic):
    """The caller, with the role in force for this request (an API token may narrow it)."""

    effective_role: Role
    via: Literal["access_token", "api_token"]


class ApiTokenCreate(BaseModel):
    """A new API token for the caller."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w .:@-]+$")]
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = None
    role: Role | None = Field(
        default=None, description="narrow the token to this role (at most the owner's)"
    )


class ApiTokenPublic(BaseModel):
    """An API token's metadata; the secret is never returned after creation."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    username: str
    role: Role | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    """The creation response: the only time the token itself is shown."""

    token: str
