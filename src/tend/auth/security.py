"""Password hashing (argon2), signed access tokens (JWT) and API token secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tend.db import utcnow
from tend.errors import Unauthorized

API_TOKEN_PREFIX = "tend_"  # noqa: S105 - a marker, not a secret
_JWT_ALGORITHM = "HS256"
_JWT_AUDIENCE = "tend"
_JWT_ISSUER = "tend"


class Passwords:
    """Hash and verify passwords with argon2id, off the event loop."""

    def __init__(
        self, *, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4
    ) -> None:
        """Configure the hasher.

        Args:
            time_cost: argon2 iterations.
            memory_cost: argon2 memory in KiB.
            parallelism: argon2 lanes.
        """
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        # Verified against when the user does not exist, so timing does not reveal usernames.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        """Hash a password.

        Args:
            password: The plain password.

        Returns:
            The argon2 encoded hash.
        """
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password against a stored hash (or a dummy one when there is none).

        Args:
            password_hash: The stored hash, or ``None`` when the user is unknown.
            password: The candidate password.

        Returns:
            Whether the password matches.
        """
        target = password_hash or self._dummy_hash

        def check() -> bool:
            try:
                return bool(self._hasher.verify(target, password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        matched = await anyio.to_thread.run_sync(check)
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: int
    token_id: str


class AccessTokens:
    """Issue and verify short-lived HS256 JWT access tokens."""

    def __init__(self, key: str, ttl_seconds: int) -> None:
        """Configure signing.

        Args:
            key: The signing key (from the data dir or ``TEND_SECRET_KEY``).
            ttl_seconds: Lifetime of issued tokens.
        """
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, *, ttl_seconds: int | None = None) -> str:
        """Sign an access token for a user.

        Args:
            user_id: The user's id.
            ttl_seconds: Lifetime override (tests use a negative one to mint expired tokens).

        Returns:
            The encoded JWT.
        """
        now = utcnow()
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "iat": now,
            "exp": now
            + timedelta(seconds=self.ttl_seconds if ttl_seconds is None else ttl_seconds),
            "jti": uuid.uuid4().hex,
            "aud": _JWT_AUDIENCE,
            "iss": _JWT_ISSUER,
        }
        return jwt.encode(claims, self._key, algorithm=_JWT_ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """Verify signature, audience, issuer and expiry.

        Args:
            token: The encoded JWT.

        Returns:
            The claims tend relies on.

        Raises:
            Unauthorized: When the token is invalid or expired.
        """
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_JWT_ALGORITHM],
                audience=_JWT_AUDIENCE,
                issuer=_JWT_ISSUER,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("access token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("invalid access token") from exc
        try:
            return AccessClaims(user_id=int(claims["sub"]), token_id=str(claims["jti"]))
        except (TypeError, ValueError) as exc:
            raise Unauthorized("invalid access token") from exc


@dataclass(frozen=True, slots=True)
class NewApiToken:
    """A freshly generated API token: the secret is shown once, only the hash is stored."""

    secret: str
    prefix: str
    digest: str


def hash_api_token(secret: str) -> str:
    """Return the SHA-256 hex digest under which an API token is stored.

    API tokens carry 256 bits of randomness, so a fast hash is enough; it keeps the lookup to
    one indexed query per request.

    Args:
        secret: The whole token as presented.

    Returns:
        The hex digest.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_api_token() -> NewApiToken:
    """Generate an API token ``tend_<prefix>_<secret>``.

    Returns:
        The token with its display prefix and digest.
    """
    prefix = secrets.token_hex(4)
    secret = f"{API_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiToken(secret=secret, prefix=prefix, digest=hash_api_token(secret))
