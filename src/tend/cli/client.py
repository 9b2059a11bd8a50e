"""A small synchronous client of tend's HTTP API for the CLI (``TEND_URL``, ``TEND_TOKEN``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx

from tend.cli.errors import CliError
from tend.settings import Settings

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Runs can take as long as their per-host timeout; only the connect phase is bounded tightly.
_STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)


def describe_error(response: httpx.Response) -> str:
    """Turn an error response into one readable line.

    Args:
        response: The HTTP response (status >= 400).

    Returns:
        ``"<status> <Name>: <detail>"``, with validation errors as ``field: message`` pairs.
    """
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"
    name = body.get("error", response.reason_phrase) if isinstance(body, dict) else "Error"
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query"))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    return f"{response.status_code} {name}: {detail}"


class ApiClient:
    """Calls the API of a running tend server and raises ``CliError`` on any failure."""

    def __init__(self, url: str, token: str | None, *, require_token: bool = True) -> None:
        """Create the client.

        Args:
            url: Server base URL.
            token: Bearer token (API token or access token).
            require_token: Fail early with advice when no token is configured.
        """
        if require_token and not token:
            msg = (
                "TEND_TOKEN is not set; create a token with "
                "`tend tokens create NAME --username USER` and export it as TEND_TOKEN"
            )
            raise CliError(msg)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=_TIMEOUT)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiClient:
        """Build a client from ``TEND_URL`` and ``TEND_TOKEN``."""
        token = settings.token.get_secret_value() if settings.token else None
        return cls(settings.url, token)

    def __enter__(self) -> ApiClient:
        """Use as a context manager; the connection pool closes on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body (``None`` for 204).

        Args:
            method: HTTP method.
            path: Path under the server URL, e.g. ``/api/v1/hosts``.
            **kwargs: Passed to ``httpx.Client.request`` (json, data, params).

        Returns:
            The decoded body.

        Raises:
            CliError: When the server cannot be reached or answers with an error.
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise CliError(f"tend at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach tend at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise CliError(describe_error(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"tend at {self.url} sent a response that is not JSON") from exc

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Open a streaming request; error statuses raise ``CliError`` before anything is read.

        Args:
            method: HTTP method.
            path: Path under the server URL.
            **kwargs: Passed to ``httpx.Client.stream``.

        Yields:
            The open response (2xx).

        Raises:
            CliError: When the server cannot be reached or answers with an error.
        """
        try:
            with self._http.stream(method, path, timeout=_STREAM_TIMEOUT, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(describe_error(response))
                yield response
        except httpx.TimeoutException as exc:
            raise CliError(f"tend at {self.url} stopped answering") from exc
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach tend at {self.url}: {exc}") from exc

    def login(self, username: str, password: str) -> str:
        """Exchange a password for a short-lived access token and use it from now on.

        Args:
            username: The username.
            password: The password.

        Returns:
            The access token.
        """
        body = self.request(
            "POST", "/api/v1/auth/token", data={"username": username, "password": password}
        )
        token = str(body["access_token"])
        self._http.headers["Authorization"] = f"Bearer {token}"
        return token
