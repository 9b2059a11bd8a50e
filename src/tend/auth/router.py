"""HTTP endpoints of the auth domain: sign-in, the caller, users (admin) and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, status

from tend.auth import service, tokens
from tend.auth.deps import Admin, Viewer
from tend.auth.models import Role
from tend.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    Me,
    Token,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from tend.context import AppContext, ContextDep, PasswordsDep, SessionDep
from tend.errors import Forbidden, Unauthorized

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=Token)
async def issue_access_token(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=1024)],
) -> Token:
    """Exchange a username and password for a short-lived bearer token (OAuth2 password flow)."""
    client = request.client.host if request.client else "unknown"
    throttle = context.login_throttle
    throttle.check(username, client)
    user = await service.authenticate(
        session, context.passwords, username=username, password=password
    )
    if user is None:
        throttle.record_failure(username, client)
        raise Unauthorized("invalid username or password")
    throttle.record_success(username)
    return Token(
        access_token=context.access_tokens.issue(user.id),
        expires_in=context.access_tokens.ttl_seconds,
    )


@router.get("/auth/me", response_model=Me)
async def who_am_i(principal: Viewer) -> Me:
    """Describe the caller and the role in force for this request."""
    public = UserPublic.model_validate(principal.user)
    return Me(**public.model_dump(), effective_role=principal.role, via=principal.via)


def _forget_tokens(context: AppContext, background: BackgroundTasks) -> None:
    """Drop cached token resolutions now and again once the change is committed.

    The second clear runs after the response (so after the commit): a request that resolved a
    token between the first clear and the commit cannot keep the old answer.
    """
    context.token_cache.clear()
    background.add_task(context.token_cache.clear)


@router.get("/users", response_model=list[UserPublic])
async def list_users(session: SessionDep, _: Admin) -> list[UserPublic]:
    """List users (admin)."""
    return [UserPublic.model_validate(u) for u in await service.list_users(session)]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
async def create_user(
    body: UserCreate, session: SessionDep, passwords: PasswordsDep, _: Admin
) -> UserPublic:
    """Create a user (admin)."""
    user = await service.create_user(
        session, passwords, username=body.username, password=body.password, role=body.role
    )
    return UserPublic.model_validate(user)


@router.get("/users/{username}", response_model=UserPublic)
async def get_user(username: str, session: SessionDep, _: Admin) -> UserPublic:
    """Show one user (admin)."""
    return UserPublic.model_validate(await service.get_user(session, username))


@router.patch("/users/{username}", response_model=UserPublic)
async def update_user(
    username: str,
    body: UserUpdate,
    session: SessionDep,
    passwords: PasswordsDep,
    context: ContextDep,
    background: BackgroundTasks,
    _: Admin,
) -> UserPublic:
    """Change a user's role, disabled flag or password (admin)."""
    _forget_tokens(context, background)  # the user's tokens must not act with the old role
    user = await service.get_user(session, username)
    updated = await service.update_user(
        session, passwords, user, role=body.role, disabled=body.disabled, password=body.password
    )
    return UserPublic.model_validate(updated)


@router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    username: str, session: SessionDep, context: ContextDep, background: BackgroundTasks, _: Admin
) -> None:
    """Delete a user and their API tokens (admin)."""
    _forget_tokens(context, background)
    await service.delete_user(session, await service.get_user(session, username))


@router.get("/tokens", response_model=list[ApiTokenPublic])
async def list_api_tokens(
    session: SessionDep,
    principal: Viewer,
    all_users: Annotated[
        bool, Query(alias="all", description="every user's tokens (admin)")
    ] = False,
) -> list[ApiTokenPublic]:
    """List the caller's API tokens, or everyone's with ``?all=true`` (admin)."""
    if all_users and principal.role != Role.ADMIN:
        raise Forbidden("listing every user's tokens requires role admin")
    return await tokens.list_tokens(session, owner=None if all_users else principal.user)


@router.post("/tokens", response_model=ApiTokenCreated, status_code=status.HTTP_201_CREATED)
async def create_api_token(
    body: ApiTokenCreate, session: SessionDep, principal: Viewer
) -> ApiTokenCreated:
    """Create an API token for the caller; the response is the only time it is shown."""
    token, secret = await tokens.create_token(
        session,
        principal.user,
        name=body.name,
        expires_in_days=body.expires_in_days,
        role=body.role,
        ceiling=principal.role,
    )
    public = tokens.to_public(token, principal.user.username)
    return ApiTokenCreated(**public.model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=ApiTokenPublic)
async def revoke_api_token(
    token_id: int,
    session: SessionDep,
    context: ContextDep,
    background: BackgroundTasks,
    principal: Viewer,
) -> ApiTokenPublic:
    """Revoke an API token (the caller's own; admins may revoke anyone's)."""
    _forget_tokens(context, background)
    return await tokens.revoke_token(
        session, token_id, actor_id=principal.user.id, may_revoke_any=principal.role == Role.ADMIN
    )
