"""Resolve ``provider/model`` references to a provider instance and the model's limits and prices."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .providers.base import ModelInfo, Provider

NO_MODEL_HELP = """no model is configured.
Configure one of these (or run `pando init`):
  * OpenAI:     export OPENAI_API_KEY=sk-...  and  pando run --model openai/gpt-4o-mini "..."
  * Anthropic:  export ANTHROPIC_API_KEY=...  and  pando run --model anthropic/claude-sonnet-4-5 "..."
  * Ollama:     ollama serve  and  pando run --model ollama/llama3.2 "..."
or put it in .pando.toml:
  [agent]
  model = "openai/gpt-4o-mini"
"""

# Known context windows and prices (USD per million tokens) for a few common models.
KNOWN_MODELS: dict[str, dict[str, float]] = {
    "gpt-4o": {"context_window": 128_000, "input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"context_window": 128_000, "input": 0.15, "output": 0.6},
    "gpt-4.1": {"context_window": 1_047_576, "input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"context_window": 1_047_576, "input": 0.4, "output": 1.6},
    "o4-mini": {"context_window": 200_000, "input": 1.1, "output": 4.4},
    "claude-sonnet-4-5": {"context_window": 200_000, "input": 3.0, "output": 15.0},
    "claude-opus-4-1": {"context_window": 200_000, "input": 15.0, "output": 75.0},
    "claude-haiku-4-5": {"context_window": 200_000, "input": 1.0, "output": 5.0},
}


def builtin_provider_kinds() -> list[str]:
    """Provider kinds usable as a provider name with no [providers.NAME] table (openai, ollama, ...)."""
    from .providers.registry import provider_kinds

    return provider_kinds()


@dataclass
class ResolvedModel:
    provider_name: str
    model_id: str
    info: ModelInfo
    options: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.provider_name}/{self.model_id}"


def resolve_model(config: Any, ref: str | None = None) -> ResolvedModel:
    agent = config.section("agent")
    providers: dict[str, Any] = config.section("providers")
    ref = (ref or agent.get("model") or "").strip()
    if not ref:
        if len(providers) == 1:
            name, table = next(iter(providers.items()))
            models = table.get("models") or {}
            default = table.get("default_model") or (next(iter(models)) if models else "")
            if default:
                ref = f"{name}/{default}"
        if not ref:
            raise ConfigError(NO_MODEL_HELP.rstrip())
    from .providers.registry import parse_model_ref

    kinds = builtin_provider_kinds()
    known = {*providers, *kinds}
    provider_name, model_id = parse_model_ref(ref, known_providers=known)
    if provider_name is None and "/" in ref and not _declared_model(providers, ref):
        raise ConfigError(
            f"model {ref!r}: no provider named {ref.split('/', 1)[0]!r}; known providers: {', '.join(sorted(known))}"
        )
    if provider_name is None:
        if len(providers) == 1:
            provider_name = next(iter(providers))
        elif os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
            provider_name = "openai"
        else:
            raise ConfigError(
                f"model {ref!r} names no provider; use provider/model, e.g. openai/{ref}, "
                "or declare the provider in [providers.NAME]"
            )
    options = provider_options(config, provider_name)
    models = (providers.get(provider_name) or {}).get("models") or {}
    model_table = dict(models.get(model_id) or {})
    known = KNOWN_MODELS.get(model_id, {})
    info = ModelInfo(
        id=model_id,
        provider=provider_name,
        context_window=int(model_table.get("context_window") or known.get("context_window") or 128_000),
        max_output_tokens=int(model_table.get("max_output_tokens") or 4096),
        input_price_per_m=float(model_table.get("input_price", known.get("input", 0.0))),
        output_price_per_m=float(model_table.get("output_price", known.get("output", 0.0))),
        cached_input_price_per_m=float(model_table.get("cached_input_price", 0.0)),
        cached_output_price_per_m=float(model_table.get("cached_output_price", 0.0)),
        accepts_images=bool(model_table["images"]) if "images" in model_table else takes_images(model_id),
    )
    return ResolvedModel(provider_name, model_id, info, options)


# model families known to take image input; any other model needs `images = true` in its models table
VISION_MODEL_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "claude-", "gemini")
VISION_MODEL_WORDS = ("vision", "llava", "-vl", "pixtral", "gemma3", "llama3.2-vision", "minicpm-v", "moondream")


def takes_images(model_id: str) -> bool:
    """Whether a model (not declared in the configuration) is known to accept images."""
    name = model_id.lower().rsplit("/", 1)[-1]
    return name.startswith(VISION_MODEL_PREFIXES) or any(word in name for word in VISION_MODEL_WORDS)


def _declared_model(providers: dict[str, Any], model_id: str) -> bool:
    """A model id containing "/" that a provider declares in its models table."""
    return any(model_id in ((table or {}).get("models") or {}) for table in providers.values() if isinstance(table, dict))


def provider_options(config: Any, provider_name: str) -> dict[str, Any]:
    """What building provider *provider_name* takes: its ``[providers.NAME]`` settings (its
    models aside), its kind, and its API key read from ``api_key_env``."""
    table = dict(config.section("providers").get(provider_name) or {})
    kind = table.pop("type", None) or (provider_name if provider_name in builtin_provider_kinds() else None)
    if kind is None:
        raise ConfigError(f"provider {provider_name!r} has no type; set [providers.{provider_name}] type = \"openai\"")
    table.pop("models", None)
    table.pop("default_model", None)
    api_key_env = table.pop("api_key_env", None)
    if api_key_env and not table.get("api_key"):
        value = os.environ.get(api_key_env)
        if not value:
            raise ConfigError(f"provider {provider_name}: environment variable {api_key_env} is not set")
        table["api_key"] = value
    return {"kind": kind, "name": provider_name, **table}


def create_provider_for(resolved: ResolvedModel, plugins: Any = None) -> Provider:
    return provider_from_options(resolved.options, plugins)


def provider_from_options(options: dict[str, Any], plugins: Any = None) -> Provider:
    """A provider built from :func:`provider_options` (provider kinds of *plugins* included)."""
    from .providers import registry

    if plugins is not None:
        for kinds in plugins.hooks.pando_register_providers():
            for kind, factory in dict(kinds).items():
                registry.register_provider_kind(kind, factory)
    options = dict(options)
    kind = options.pop("kind")
    name = options.get("name") or kind
    if str(kind).strip().lower() not in registry.provider_kinds():
        raise ConfigError(
            f"[providers.{name}] type = {kind!r} is not a provider kind; known kinds: {', '.join(registry.provider_kinds())}"
        )
    try:
        return registry.create_provider(kind, **options)
    except (ValueError, TypeError) as exc:  # an option the kind does not take, a bad value
        raise ConfigError(f"[providers.{name}]: {exc}") from exc


def request_cost(info: ModelInfo, usage: Any) -> float:
    return (
        info.cached_input_price_per_m * usage.cache_creation_tokens
        + info.cached_output_price_per_m * usage.cache_read_tokens
        + info.input_price_per_m * usage.input_tokens
        + info.output_price_per_m * usage.output_tokens
    ) / 1_000_000
