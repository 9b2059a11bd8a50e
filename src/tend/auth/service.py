"""Use cases of users: sign-in, resolving bearer credentials, and user management."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.auth.cache import ApiTokenCache
from tend.auth.models import ApiToken, Role, User
from tend.auth.security import API_TOKEN_PREFIX, AccessTokens, Passwords, hash_api_token
from tend.db import utcnow
from tend.errors import Conflict, NotFound, Unauthorized

# Writing last_used_at on every request would turn reads into writes; once a minute is plenty.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and with which role for this request."""

    user: User
    role: Role
    via: Literal["access_token", "api_token"]
    api_token_id: int | None = None


async def authenticate(
    session: AsyncSession, passwords: Passwords, *, username: str, password: str
) -> User | None:
    """Check a username and password.

    Args:
        session: Database session.
        passwords: The password hasher.
        username: The username (case-insensitive).
        password: The candidate password.

    Returns:
        The user when the password matches and the user is enabled, else ``None``.
    """
    user = await find_user(session, username.strip().lower())
    ok = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    return user


async def resolve_bearer(
    session: AsyncSession,
    access_tokens: AccessTokens,
    credential: str,
    cache: ApiTokenCache | None = None,
) -> Principal:
    """Turn a bearer credential (JWT access token or API token) into a principal.

    Args:
        session: Database session.
        access_tokens: JWT verifier.
        credential: The bearer credential.
        cache: Recently resolved API tokens (reused for a few seconds), if any.

    Returns:
        The principal.

    Raises:
        Unauthorized: For invalid, expired or revoked credentials, and for disabled users.
    """
    if credential.startswith(API_TOKEN_PREFIX):
        return await _resolve_api_token(session, credential, cache)
    claims = access_tokens.verify(credential)
    user = await session.get(User, claims.user_id)
    if user is None or user.disabled:
        raise Unauthorized("user is disabled or no longer exists")
    return Principal(user=user, role=Role(user.role), via="access_token")


async def _resolve_api_token(
    session: AsyncSession, credential: str, cache: ApiTokenCache | None
) -> Principal:
    token_hash = hash_api_token(credential)
    if cache is not None and (known := cache.get(token_hash)) is not None:
        return known
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash)
        )
    ).first()
    if row is None:
        raise Unauthorized("invalid API token")
    token, user = row
    now = utcnow()
    if token.revoked_at is not None:
        raise Unauthorized("API token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized("API token expired")
    if user.disabled:
        raise Unauthorized("user is disabled")
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = now
    role = Role(user.role)
    if token.role is not None and not Role(token.role).allows(role):
        role = Role(token.role)
    principal = Principal(user=user, role=role, via="api_token", api_token_id=token.id)
    if cache is not None:
        cache.put(token_hash, principal, token.expires_at)
    return principal


async def find_user(session: AsyncSession, username: str) -> User | None:
    """Look a user up by username.

    Args:
        session: Database session.
        username: Exact (lower-case) username.

    Returns:
        The user or ``None``.
    """
    return (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()


async def get_user(session: AsyncSession, username: str) -> User:
    """Return a user or raise ``NotFound``.

    Args:
        session: Database session.
        username: The username.

    Returns:
        The user.

    Raises:
        NotFound: When there is no such user.
    """
    user = await find_user(session, username.strip().lower())
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    """Return every user ordered by username."""
    return list((await session.execute(select(User).order_by(User.username))).scalars())


async def count_users(session: AsyncSession) -> int:
    """Return the number of users."""
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def create_user(
    session: AsyncSession, passwords: Passwords, *, username: str, password: str, role: Role
) -> User:
    """Create a user with a hashed password.

    Args:
        session: Database session.
        passwords: The password hasher.
        username: Validated username.
        password: Plain password (hashed here, never stored).
        role: The role.

    Returns:
        The new user.

    Raises:
        Conflict: When the username is taken.
    """
    if await find_user(session, username) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=await passwords.hash(password), role=role.value)
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {username!r} already exists") from exc
    return user


async def _other_active_admins(session: AsyncSession, user: User) -> int:
    query = select(func.count()).where(
        User.role == Role.ADMIN.value, User.disabled.is_(False), User.id != user.id
    )
    return int((await session.execute(query)).scalar_one())


async def update_user(
    session: AsyncSession,
    passwords: Passwords,
    user: User,
    *,
    role: Role | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's role, enabled state or password.

    Args:
        session: Database session.
        passwords: The password hasher.
        user: The user to change.
        role: New role, if any.
        disabled: New disabled flag, if any.
        password: New password, if any.

    Returns:
        The updated user.

    Raises:
        Conflict: When the change would leave no enabled admin.
    """
    loses_admin = (
        user.role == Role.ADMIN.value
        and not user.disabled
        and ((role is not None and role != Role.ADMIN) or disabled is True)
    )
    if loses_admin and await _other_active_admins(session, user) == 0:
        raise Conflict("this is the last enabled admin; promote another admin first")
    if role is not None:
        user.role = role.value
    if disabled is not None:
        user.disabled = disabled
    if password is not None:
        user.password_hash = await passwords.hash(password)
    user.updated_at = utcnow()
    await session.flush()
    return user


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete a user and their API tokens.

    Args:
        session: Database session.
        user: The user.

    Raises:
        Conflict: When the user is the last enabled admin.
    """
    if (
        user.role == Role.ADMIN.value
        and not user.disabled
        and await _other_active_admins(session, user) == 0
    ):
        raise Conflict("this is the last enabled admin; promote another admin first")
    await session.delete(user)
    await session.flush()
