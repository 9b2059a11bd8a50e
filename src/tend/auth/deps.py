"""Authentication and role checks as FastAPI dependencies."""
# No "from __future__ import annotations": FastAPI must see the closure variable in require_role.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer

from tend.auth.models import Role
from tend.auth.service import Principal, resolve_bearer
from tend.context import ContextDep, SessionDep
from tend.errors import Forbidden, Unauthorized

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a URL, not a secret

# Roles are published as OAuth2 scopes so the OpenAPI document states each endpoint's minimum role.
_bearer = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    scopes={role.value: f"endpoints that need role {role.value} or higher" for role in Role},
)


async def get_principal(
    context: ContextDep,
    session: SessionDep,
    credential: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request from its ``Authorization: Bearer`` header.

    Args:
        context: App context (JWT verifier).
        session: The request's session.
        credential: The bearer credential, if any.

    Returns:
        The principal.

    Raises:
        Unauthorized: Without valid credentials.
    """
    if not credential:
        raise Unauthorized("not authenticated")
    return await resolve_bearer(session, context.access_tokens, credential, context.token_cache)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

RoleCheck = Callable[[Principal], Awaitable[Principal]]


def require_role(minimum: Role) -> RoleCheck:
    """Build a dependency that admits principals holding at least ``minimum``.

    The role is declared as the endpoint's OAuth2 scope, so ``/openapi.json`` names the minimum
    role of every endpoint (the auth matrix test is generated from it).

    Args:
        minimum: The lowest role allowed.

    Returns:
        The dependency.
    """

    async def check(
        principal: Annotated[Principal, Security(get_principal, scopes=[minimum.value])],
    ) -> Principal:
        if not principal.role.allows(minimum):
            raise Forbidden(f"requires role {minimum.value} or higher; you have {principal.role}")
        return principal

    check.__name__ = f"require_{minimum.value}"
    return check


Viewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]
