"""Use cases of API tokens: create (shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.auth.models import ApiToken, Role, User
from tend.auth.schemas import ApiTokenPublic
from tend.auth.security import generate_api_token
from tend.db import utcnow
from tend.errors import NotFound, ValidationFailed


def to_public(token: ApiToken, username: str) -> ApiTokenPublic:
    """Describe a token without its secret.

    Args:
        token: The token row.
        username: Its owner's username.

    Returns:
        The public view.
    """
    return ApiTokenPublic(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        username=username,
        role=Role(token.role) if token.role else None,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


async def create_token(
    session: AsyncSession,
    owner: User,
    *,
    name: str,
    expires_in_days: int | None,
    role: Role | None,
    ceiling: Role,
) -> tuple[ApiToken, str]:
    """Create an API token for a user.

    Args:
        session: Database session.
        owner: The user the token acts as.
        name: A label.
        expires_in_days: Lifetime in days, or ``None`` for no expiry.
        role: Narrower role for the token, or ``None`` for the ceiling.
        ceiling: The most power the new token may have: the role the caller holds right now
            (a narrowed token cannot mint a stronger one).

    Returns:
        The stored token and its secret (to show once).

    Raises:
        ValidationFailed: When ``role`` is above the ceiling.
    """
    if role is not None and not ceiling.allows(role):
        raise ValidationFailed(f"a token cannot have more power than its creator ({ceiling})")
    if role is None and ceiling != Role(owner.role):
        role = ceiling
    generated = generate_api_token()
    now = utcnow()
    token = ApiToken(
        user_id=owner.id,
        name=name,
        prefix=generated.prefix,
        token_hash=generated.digest,
        role=role.value if role else None,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    await session.flush()
    return token, generated.secret


async def list_tokens(session: AsyncSession, *, owner: User | None) -> list[ApiTokenPublic]:
    """List tokens, of one user or of everyone.

    Args:
        session: Database session.
        owner: Restrict to this user's tokens; ``None`` lists all.

    Returns:
        Tokens, newest first.
    """
    query = select(ApiToken, User.username).join(User, ApiToken.user_id == User.id)
    if owner is not None:
        query = query.where(ApiToken.user_id == owner.id)
    rows = await session.execute(query.order_by(ApiToken.id.desc()))
    return [to_public(token, username) for token, username in rows]


async def revoke_token(
    session: AsyncSession, token_id: int, *, actor_id: int, may_revoke_any: bool
) -> ApiTokenPublic:
    """Revoke a token at once; revoking twice is harmless.

    Args:
        session: Database session.
        token_id: The token's id.
        actor_id: The user revoking it.
        may_revoke_any: Whether the actor (an admin) may revoke other users' tokens.

    Returns:
        The revoked token.

    Raises:
        NotFound: When there is no such token, or it is someone else's and the actor may not
            touch it (others' tokens look absent rather than forbidden).
    """
    row = (
        await session.execute(
            select(ApiToken, User.username)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.id == token_id)
        )
    ).first()
    if row is None or (row[0].user_id != actor_id and not may_revoke_any):
        raise NotFound(f"API token {token_id} not found")
    token, username = row
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.flush()
    return to_public(token, username)
