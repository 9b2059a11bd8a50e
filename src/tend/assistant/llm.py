"""The model the assistant talks to, built from settings: provider, retries, context size, price.

``TEND_LLM_MODEL`` is ``provider:model``. ``openai`` and every OpenAI-compatible server (Ollama,
vLLM, llama.cpp, OpenRouter, ... reached through ``TEND_LLM_BASE_URL``) speak Chat Completions,
chosen explicitly because pydantic-ai's ``openai:`` prefix means the Responses API, which those
servers lack (``openai-responses:`` opts into it for OpenAI itself). ``anthropic`` speaks the
Messages API, to ``TEND_LLM_BASE_URL`` when set (a proxy). The SDKs' own retries are off: one
:class:`~tend.assistant.llm_retry.RetryingTransport` per model retries 429, 5xx and lost
connections with capped backoff honouring ``Retry-After``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2
from anthropic import AsyncAnthropic
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot
from openai import AsyncOpenAI
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.fallback import FallbackModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers import Provider
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.ollama import OllamaProvider
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider
from pydantic_ai.settings import ModelSettings

from tend.assistant.llm_retry import RetryingTransport
from tend.errors import ServiceUnavailable

if TYPE_CHECKING:
    from pydantic_ai.usage import RequestUsage, RunUsage

    from tend.settings import Settings

HOW_TO_CONFIGURE = (
    "Set TEND_LLM_MODEL to provider:model and TEND_LLM_API_KEY to the provider's key, e.g. "
    "TEND_LLM_MODEL=anthropic:claude-sonnet-4-6 TEND_LLM_API_KEY=sk-ant-... or "
    "TEND_LLM_MODEL=openai:gpt-4.1 TEND_LLM_API_KEY=sk-...; for a local OpenAI-compatible server "
    "(Ollama, vLLM, llama.cpp) set TEND_LLM_MODEL=ollama:llama3.1 and "
    "TEND_LLM_BASE_URL=http://127.0.0.1:11434/v1. Optional: TEND_LLM_FALLBACK_MODEL, "
    "TEND_LLM_TIMEOUT, TEND_LLM_MAX_RETRIES, TEND_LLM_CONTEXT_TOKENS, TEND_LLM_MAX_OUTPUT_TOKENS. "
    "Diagnostics (tend check) work without a model."
)

# Providers reached without a base URL, and where.
DEFAULT_BASE_URLS = {
    "ollama": "http://127.0.0.1:11434/v1",
    "openrouter": "https://openrouter.ai/api/v1",
}
# Providers whose hosted API needs a key.
KEYED_PROVIDERS = frozenset(
    {"openai", "openai-chat", "openai-responses", "anthropic", "openrouter"}
)
NO_KEY = "not-needed"  # the SDKs insist on some key; local servers ignore it

DEFAULT_CONTEXT_TOKENS = 32_000
OLLAMA_CONTEXT_TOKENS = 8_192  # Ollama's default num_ctx is small; set TEND_LLM_CONTEXT_TOKENS
# Context windows of common models genai-prices may not know under the provider used, by prefix
# (longest prefix wins).
KNOWN_CONTEXT_TOKENS = {
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-5": 400_000,
    "o3": 200_000,
    "o4": 200_000,
    "claude": 200_000,
    "llama3": 128_000,
    "llama-3": 128_000,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "mistral": 32_768,
    "gemma3": 128_000,
    "deepseek": 128_000,
    "gpt-oss": 131_072,
}


class AssistantNotConfigured(ServiceUnavailable):
    """No usable model is configured; the detail says how to configure one (HTTP 503)."""

    def __init__(self, problem: str = "the assistant has no model configured") -> None:
        """Create the error.

        Args:
            problem: What is missing or wrong, before the how-to.
        """
        super().__init__(f"{problem}. {HOW_TO_CONFIGURE}")
        self.problem = problem


@dataclass(frozen=True)
class ModelSpec:
    """One configured model: ``provider:name`` plus where and how to reach it."""

    provider: str
    name: str
    base_url: str | None
    api_key: str | None
    fallback: bool = False

    @property
    def label(self) -> str:
        """``provider:name``, as configured."""
        return f"{self.provider}:{self.name}"


def parse_model(text: str) -> tuple[str, str]:
    """Split ``provider:model`` into its parts.

    Args:
        text: The configured model, e.g. ``openai:gpt-4.1``.

    Returns:
        The provider (lower case) and the model name (which may itself contain ``:``).

    Raises:
        AssistantNotConfigured: When the text is not ``provider:model``.
    """
    provider, sep, name = text.strip().partition(":")
    if not sep or not provider.strip() or not name.strip():
        raise AssistantNotConfigured(f"model {text!r} is not in the form provider:model")
    return provider.strip().lower(), name.strip()


def model_specs(settings: Settings) -> list[ModelSpec]:
    """Return the configured models, main first, then the fallback if any.

    The fallback uses the main model's base URL and key unless it has its own, when both name the
    same provider.

    Args:
        settings: The settings.

    Returns:
        One or two specs.

    Raises:
        AssistantNotConfigured: When no model is configured or one is malformed.
    """
    if not settings.llm_model:
        raise AssistantNotConfigured()
    provider, name = parse_model(settings.llm_model)
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    main = ModelSpec(provider, name, settings.llm_base_url, key)
    if not settings.llm_fallback_model:
        return [main]
    fb_provider, fb_name = parse_model(settings.llm_fallback_model)
    same = fb_provider == provider
    fb_key = (
        settings.llm_fallback_api_key.get_secret_value() if settings.llm_fallback_api_key else None
    )
    fallback = ModelSpec(
        fb_provider,
        fb_name,
        settings.llm_fallback_base_url or (main.base_url if same else None),
        fb_key or (main.api_key if same else None),
        fallback=True,
    )
    return [main, fallback]


def _http_client(settings: Settings) -> httpx2.AsyncClient:
    transport = RetryingTransport(
        max_retries=settings.llm_max_retries,
        backoff=settings.llm_retry_backoff,
        max_delay=settings.llm_retry_max_delay,
    )
    return httpx2.AsyncClient(transport=transport, timeout=_timeout(settings))


def _timeout(settings: Settings) -> httpx2.Timeout:
    return httpx2.Timeout(settings.llm_timeout, connect=min(10.0, settings.llm_timeout))


def _checked_key(spec: ModelSpec) -> str:
    if spec.api_key:
        return spec.api_key
    if spec.provider in KEYED_PROVIDERS and spec.base_url is None:
        setting = "TEND_LLM_FALLBACK_API_KEY" if spec.fallback else "TEND_LLM_API_KEY"
        raise AssistantNotConfigured(f"model {spec.label} needs an API key ({setting} is not set)")
    return NO_KEY


def _model_settings(settings: Settings) -> ModelSettings:
    return ModelSettings(max_tokens=settings.llm_max_output_tokens)


def _build_one(spec: ModelSpec, settings: Settings) -> Model:
    key = _checked_key(spec)
    if spec.provider == "anthropic":
        return _anthropic_model(spec, key, settings)
    return _openai_model(spec, key, settings)


def _anthropic_model(spec: ModelSpec, key: str, settings: Settings) -> Model:
    client = AsyncAnthropic(
        api_key=key,
        base_url=spec.base_url,
        http_client=_http_client(settings),
        max_retries=0,
        timeout=_timeout(settings),
    )
    provider = AnthropicProvider(anthropic_client=client)
    return AnthropicModel(spec.name, provider=provider, settings=_model_settings(settings))


def _openai_model(spec: ModelSpec, key: str, settings: Settings) -> Model:
    official = spec.provider in {"openai", "openai-chat", "openai-responses"}
    base_url = spec.base_url or DEFAULT_BASE_URLS.get(spec.provider)
    if base_url is None and not official:
        raise AssistantNotConfigured(
            f"model {spec.label}: tend reaches provider {spec.provider!r} through an "
            "OpenAI-compatible server, so TEND_LLM_BASE_URL must say where "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    client = AsyncOpenAI(
        api_key=key,
        base_url=base_url,
        http_client=_http_client(settings),
        max_retries=0,
        timeout=_timeout(settings),
    )
    provider: Provider[AsyncOpenAI]
    if official and spec.base_url is None:
        provider = OpenAIProvider(openai_client=client)
        if spec.provider == "openai-responses":
            return OpenAIResponsesModel(
                spec.name, provider=provider, settings=_model_settings(settings)
            )
    elif spec.provider == "ollama":
        provider = OllamaProvider(openai_client=client)
    else:
        # Another server behind an "openai:" name gets the compatible profile, without the
        # request options only OpenAI's own API accepts.
        name = "openai-compatible" if official else spec.provider
        provider = OpenAICompatibleProvider(name, openai_client=client)
    return OpenAIChatModel(spec.name, provider=provider, settings=_model_settings(settings))


def build_model(settings: Settings) -> Model:
    """Build the model the assistant talks to, with the fallback model if one is configured.

    Args:
        settings: The settings (``TEND_LLM_*``).

    Returns:
        A pydantic-ai model (a ``FallbackModel`` when ``TEND_LLM_FALLBACK_MODEL`` is set). Close
        its HTTP clients with :func:`aclose_model` when done.

    Raises:
        AssistantNotConfigured: When no model is configured, or it cannot be used as configured.
    """
    models = [_build_one(spec, settings) for spec in model_specs(settings)]
    if len(models) == 1:
        return models[0]
    return FallbackModel(models[0], *models[1:])


async def aclose_model(model: Model) -> None:
    """Close the HTTP clients of a model made by :func:`build_model`.

    Args:
        model: The model (or fallback model).
    """
    inner = model.models if isinstance(model, FallbackModel) else [model]
    for each in inner:
        client = getattr(each, "client", None)
        close = getattr(client, "close", None)
        if close is not None:
            await close()


def _split(model_name: str) -> tuple[str | None, str]:
    provider, sep, name = model_name.partition(":")
    if sep and provider and provider.lower() in _PROVIDER_NAMES:
        return provider.lower(), name
    return None, model_name


_PROVIDER_NAMES = frozenset(
    {*KEYED_PROVIDERS, *DEFAULT_BASE_URLS, "openai-compatible", "vllm", "llamacpp", "lmstudio"}
)
_GENAI_PROVIDER = {"openai-chat": "openai", "openai-responses": "openai"}


def _genai_context(provider: str | None, name: str) -> int | None:
    provider_id = _GENAI_PROVIDER.get(provider or "", provider)
    try:
        _, info = get_snapshot().find_provider_model(name, None, provider_id, None)
    except LookupError:
        return None
    return info.context_window


def model_context_tokens(settings: Settings, model_name: str) -> int:
    """Return the context window, in tokens, of a model.

    ``TEND_LLM_CONTEXT_TOKENS`` wins; then what genai-prices knows for that provider; then a table
    of common models; Ollama's small default window for ``ollama:``; else 32,000.

    Args:
        settings: The settings.
        model_name: ``provider:model`` or a bare model name (as a response names it).

    Returns:
        The number of tokens the model accepts.
    """
    if settings.llm_context_tokens is not None:
        return settings.llm_context_tokens
    provider, name = _split(model_name)
    if provider == "ollama":
        return OLLAMA_CONTEXT_TOKENS
    known = _genai_context(provider, name)
    if known:
        return known
    lowered = name.lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in KNOWN_CONTEXT_TOKENS if lowered.startswith(prefix)]
    if matches:
        return KNOWN_CONTEXT_TOKENS[max(matches, key=len)]
    return DEFAULT_CONTEXT_TOKENS


def price_of(usage: RequestUsage | RunUsage, model_name: str) -> float | None:
    """Return the cost in US dollars of ``usage`` on a model, when genai-prices knows its price.

    Args:
        usage: Token usage of a request or run.
        model_name: ``provider:model`` or a bare model name.

    Returns:
        The price, or ``None`` when the model (or a local server's model) has no known price.
    """
    provider, name = _split(model_name)
    if provider in {"ollama", "vllm", "llamacpp", "lmstudio", "openai-compatible"}:
        return None
    try:
        price = calc_price(usage, name, provider_id=_GENAI_PROVIDER.get(provider or "", provider))
    except (LookupError, ValueError):
        return None
    return float(price.total_price)
