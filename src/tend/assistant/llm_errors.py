"""Turn a failed model request into one clear sentence for the user (never a stack trace).

pydantic-ai raises a ``ModelAPIError`` family member for provider answers and transport failures
(a ``FallbackExceptionGroup`` when every configured model failed); a stream the provider cut may
also surface as a bare ``httpx2`` transport error. :func:`explain_model_failure` names the
provider, the model, the HTTP status or what went wrong, and how many attempts were made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
from pydantic_ai.exceptions import (
    FallbackExceptionGroup,
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRequestTimeout,
    ModelTimeoutError,
)

from tend.assistant.llm import ModelSpec, model_specs
from tend.assistant.llm_retry import ATTEMPTS_HEADER
from tend.errors import ServiceUnavailable

if TYPE_CHECKING:
    from tend.settings import Settings

MODEL_FAILURES: tuple[type[BaseException], ...] = (
    ModelAPIError,
    FallbackExceptionGroup,
    httpx2.TransportError,
)
"""The exceptions a run raises when the provider, not the conversation, failed."""

_STATUS_MEANING = {
    400: "the request was rejected",
    401: "the API key was refused (check TEND_LLM_API_KEY)",
    402: "the account has no credit left",
    403: "access was refused (check TEND_LLM_API_KEY and the account's access to the model)",
    404: "unknown model or URL (check TEND_LLM_MODEL and TEND_LLM_BASE_URL)",
    408: "the provider timed out",
    413: "the request was too large",
    429: "rate limited",
    529: "the provider is overloaded",
}
_MAX_DETAIL = 300


class ModelRequestFailed(ServiceUnavailable):
    """The model provider failed after the configured retries (HTTP 503)."""


def _spec_for(model_name: str, specs: list[ModelSpec]) -> ModelSpec | None:
    return next((spec for spec in specs if spec.name == model_name), None)


def _who(model_name: str, specs: list[ModelSpec]) -> str:
    spec = _spec_for(model_name, specs)
    if spec is None:
        return f"the model provider (model {model_name})"
    where = f" at {spec.base_url}" if spec.base_url else ""
    return f"the model provider {spec.provider}{where} (model {spec.name})"


def _provider_message(body: object) -> str:
    """The provider's own words from an error body, shortened."""
    message: object = None
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message is None and isinstance(inner, str):
            message = inner
    elif isinstance(body, str):
        message = body
    if not isinstance(message, str) or not message.strip():
        return ""
    text = " ".join(message.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _attempts(headers: dict[str, str] | None) -> str:
    value = (headers or {}).get(ATTEMPTS_HEADER)
    if value is None or value == "1":
        return ""
    return f" after {value} attempts"


def _describe_http(exc: ModelHTTPError, specs: list[ModelSpec]) -> str:
    status = exc.status_code
    meaning = _STATUS_MEANING.get(status, "server error" if status >= 500 else "refused")
    text = (
        f"{_who(exc.model_name, specs)} answered HTTP {status}{_attempts(exc.headers)}: {meaning}"
    )
    if status == 429 and exc.retry_after is not None:
        text += f", it asks to wait {exc.retry_after:.0f} s"
    detail = _provider_message(exc.body)
    return f"{text}; the provider says: {detail}" if detail else text


def _describe_one(exc: BaseException, settings: Settings, specs: list[ModelSpec]) -> str:
    retries = settings.llm_max_retries
    tries = f" after {retries + 1} attempts" if retries else ""
    if isinstance(exc, ModelHTTPError):
        return _describe_http(exc, specs)
    if isinstance(exc, ModelRequestTimeout):
        return f"{_who(exc.model_name, specs)} did not finish within {exc.timeout:g} s"
    if isinstance(exc, ModelTimeoutError):
        return (
            f"{_who(exc.model_name, specs)} did not answer within {settings.llm_timeout:g} s "
            "(TEND_LLM_TIMEOUT)"
        )
    if isinstance(exc, ModelConnectionError) and exc.phase == "read":
        return f"{_who(exc.model_name, specs)} broke off its response"
    if isinstance(exc, ModelConnectionError):
        return f"could not reach {_who(exc.model_name, specs)}{tries}: {_root_cause(exc)}"
    if isinstance(exc, ModelAPIError):
        return f"{_who(exc.model_name, specs)} failed: {_short(exc.message)}"
    if isinstance(exc, httpx2.TimeoutException):
        return f"the model provider did not answer within {settings.llm_timeout:g} s"
    if isinstance(exc, httpx2.TransportError):
        return f"the connection to the model provider broke: {type(exc).__name__}"
    return f"the model request failed: {type(exc).__name__}"


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's message (the SDKs say only "Connection error.")."""
    message = str(exc)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if str(current).strip():
            message = str(current)
        current = current.__cause__ or current.__context__
    return _short(message)


def _short(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def explain_model_failure(exc: BaseException, settings: Settings) -> ModelRequestFailed:
    """Describe a failed model request in one message that names provider, model and cause.

    Args:
        exc: What the run raised (one of :data:`MODEL_FAILURES`).
        settings: The settings the model was built from (names the provider and its URL).

    Returns:
        The error to report (503); raise it ``from exc`` to keep the cause in logs.
    """
    try:
        specs = model_specs(settings)
    except ServiceUnavailable:
        specs = []
    if isinstance(exc, FallbackExceptionGroup):
        parts = [_describe_one(inner, settings, specs) for inner in exc.exceptions]
        return ModelRequestFailed("every configured model failed: " + "; ".join(parts))
    return ModelRequestFailed(_describe_one(exc, settings, specs))
