"""Provider kinds → factories, and ``provider/model`` reference parsing.

Built-in kinds: "openai" and its OpenAI-compatible aliases ("openai-compatible", "ollama",
"openrouter", "groq", "vllm", "lmstudio", "llamacpp"/"llama-cpp", "xai"), and "anthropic".
Provider modules (and their SDKs) are imported only when a provider is created. Plugins add kinds with
`register_provider_kind(name, factory)`; a factory is called as ``factory(**options)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .base import Provider

ProviderFactory = Callable[..., Provider]

# OpenAI-compatible aliases: defaults for OpenAICompatibleProvider (caller options win).
OPENAI_COMPATIBLE_KINDS: dict[str, dict[str, Any]] = {
    "openai": {},
    "openai-compatible": {},
    "ollama": {"default_base_url": "http://localhost:11434/v1", "api_key_env": "OLLAMA_API_KEY"},
    "openrouter": {
        "default_base_url": "https://openrouter.ai/api/v1",
        "api_key_env": "OPENROUTER_API_KEY",
        "default_headers": {"X-Title": "Pando"},
    },
    "groq": {"default_base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"},
    "vllm": {"default_base_url": "http://localhost:8000/v1", "api_key_env": "VLLM_API_KEY"},
    "lmstudio": {"default_base_url": "http://localhost:1234/v1", "api_key_env": "LMSTUDIO_API_KEY"},
    "llamacpp": {"default_base_url": "http://localhost:8080/v1", "api_key_env": "LLAMACPP_API_KEY"},
    "llama-cpp": {"default_base_url": "http://localhost:8080/v1", "api_key_env": "LLAMACPP_API_KEY"},
    "xai": {"default_base_url": "https://api.x.ai/v1", "api_key_env": "XAI_API_KEY"},
}
# Only the plain "openai" kinds read OPENAI_BASE_URL; the aliases have their own default endpoint.
_READS_OPENAI_BASE_URL = {"openai", "openai-compatible"}

# Option spellings accepted from configuration files.
_OPTION_ALIASES = {
    "baseUrl": "base_url",
    "base-url": "base_url",
    "url": "base_url",
    "apiKey": "api_key",
    "api-key": "api_key",
    "headers": "default_headers",
    "extra_headers": "default_headers",
    "extraHeaders": "default_headers",
    "maxRetries": "max_retries",
}

# Options every SDK provider takes (see SdkProvider._configure), then each kind's own.
_COMMON_OPTIONS = frozenset(
    {
        "name",
        "base_url",
        "api_key",
        "max_retries",
        "timeout",
        "connect_timeout",
        "api_key_env",
        "base_url_env",
        "default_headers",
        "backoff_base",
        "backoff_max",
    }
)
_OPENAI_OPTIONS = _COMMON_OPTIONS | {"default_base_url", "extra_body", "send_reasoning_content"}
_ANTHROPIC_OPTIONS = _COMMON_OPTIONS | {"prompt_cache"}


def _normalise_options(kind: str, options: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in options.items():
        key = _OPTION_ALIASES.get(key, key)
        if value is None:
            continue  # "not configured": keep the kind's default
        result[key] = value
    unknown = sorted(set(result) - allowed)
    if unknown:
        raise ValueError(f"unknown option(s) for provider kind {kind!r}: {', '.join(unknown)}")
    return result


def _openai_factory(kind: str) -> ProviderFactory:
    def factory(**options: Any) -> Provider:
        from .openai_compat import OpenAICompatibleProvider

        merged: dict[str, Any] = {"name": kind, **OPENAI_COMPATIBLE_KINDS.get(kind, {})}
        if kind not in _READS_OPENAI_BASE_URL:
            merged["base_url_env"] = None
        given = _normalise_options(kind, options, _OPENAI_OPTIONS)
        if "default_headers" in given and "default_headers" in merged:
            given["default_headers"] = {**merged["default_headers"], **given["default_headers"]}
        merged.update(given)
        return OpenAICompatibleProvider(**merged)

    return factory


def _anthropic_factory(**options: Any) -> Provider:
    from .anthropic import AnthropicProvider

    return AnthropicProvider(**_normalise_options("anthropic", options, _ANTHROPIC_OPTIONS))


_FACTORIES: dict[str, ProviderFactory] = {kind: _openai_factory(kind) for kind in OPENAI_COMPATIBLE_KINDS}
_FACTORIES["anthropic"] = _anthropic_factory


def register_provider_kind(name: str, factory: ProviderFactory, *, replace: bool = True) -> None:
    """Make `create_provider(name, **options)` call ``factory(**options)``.

    Re-registering a kind replaces it unless ``replace=False`` (then a ValueError is raised)."""
    key = name.strip().lower()
    if not key:
        raise ValueError("a provider kind needs a name")
    if not callable(factory):
        raise TypeError(f"provider factory for {name!r} is not callable")
    if not replace and key in _FACTORIES:
        raise ValueError(f"provider kind {name!r} is already registered")
    _FACTORIES[key] = factory


def unregister_provider_kind(name: str) -> None:
    _FACTORIES.pop(name.strip().lower(), None)


def provider_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(_FACTORIES)


def create_provider(kind: str, **options: Any) -> Provider:
    """A provider of `kind` configured with `options` (base_url, api_key, name, max_retries, timeout,
    default_headers, ...; None values mean "use the default")."""
    key = (kind or "").strip().lower()
    factory = _FACTORIES.get(key)
    if factory is None:
        raise ValueError(f"unknown provider kind {kind!r}; known kinds: {', '.join(provider_kinds())}")
    return factory(**options)


def parse_model_ref(ref: str, known_providers: Iterable[str] | None = None) -> tuple[str | None, str]:
    """Split ``"provider/model"`` at the first "/": ``"openrouter/meta-llama/llama-3"`` →
    ``("openrouter", "meta-llama/llama-3")``; a bare ``"model"`` → ``(None, "model")``.

    With `known_providers`, the prefix must be one of them, so a model id that itself contains "/"
    (``"meta-llama/llama-3"``) is returned whole as ``(None, ref)``.
    """
    text = (ref or "").strip()
    if not text:
        raise ValueError("empty model reference")
    head, sep, rest = text.partition("/")
    if not sep or not head or not rest:
        return None, text.strip("/") or text
    if known_providers is not None and head not in set(known_providers):
        return None, text
    return head, rest


__all__ = [
    "OPENAI_COMPATIBLE_KINDS",
    "ProviderFactory",
    "create_provider",
    "parse_model_ref",
    "provider_kinds",
    "register_provider_kind",
    "unregister_provider_kind",
]
