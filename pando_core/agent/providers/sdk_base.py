"""What the SDK-backed providers share: settings, one SDK client per event loop, retries and error
mapping (before and during a stream), the model list call and the final finish reason."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

from ...errors import ConfigError
from .base import ProviderError
from .retry import ErrorInfo, RetryPolicy, build_provider_error, call_with_retries, classify_sdk_error

T = TypeVar("T")


class SdkProvider:
    """Base of providers built on an official SDK module (``openai``, ``anthropic``).

    Subclasses set ``sdk`` (the module, exposing ``APIStatusError``, ``APIConnectionError``,
    ``APITimeoutError``, ``APIError`` and ``Timeout``), ``sdk_client_class`` (the async client's
    attribute name) and ``placeholder_api_key``.
    """

    sdk: ModuleType
    sdk_client_class: str
    placeholder_api_key = "not-needed"

    def _configure(
        self,
        *,
        name: str,
        base_url: str | None,
        base_url_env: str | None,
        default_base_url: str,
        api_key: str | None,
        api_key_env: str | None,
        timeout: float,
        connect_timeout: float,
        default_headers: Mapping[str, str] | None,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
    ) -> None:
        """Settings shared by the SDK providers. The endpoint is `base_url`, else the `base_url_env`
        environment variable, else `default_base_url` (without a trailing "/"); the key is `api_key`,
        else `api_key_env`, else the placeholder."""
        self.name = name
        env_url = os.environ.get(base_url_env) if base_url_env else None
        self.base_url = (base_url or env_url or default_base_url).rstrip("/")
        _check_base_url(name, self.base_url)
        self.api_key_env = api_key_env
        key = api_key if api_key is not None else os.environ.get(api_key_env, "") if api_key_env else ""
        if not key and _is_hosted(self.base_url):
            variable = api_key_env or "an api_key"
            raise ConfigError(
                f"provider {name}: {variable} is not set. Export it (export {variable}=...), put api_key in "
                f"[providers.{name}], or run `pando init`; to try pando without a key, point it at a local "
                "model server (Ollama, or `python -m pando_core.testing.model_server`, see the README)"
            )
        self._api_key = key or self.placeholder_api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.default_headers = dict(default_headers or {})
        self.retry_policy = RetryPolicy(
            max_retries=max_retries, base_delay=backoff_base, max_delay=backoff_max
        )
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _get_client(self) -> Any:
        """One SDK client per event loop (pooled connections cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            client_class = getattr(self.sdk, self.sdk_client_class)
            self._client = client_class(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,  # retries are ours (retry.py), with Retry-After and one-line errors
                timeout=self.sdk.Timeout(self.timeout, connect=self.connect_timeout),
                default_headers=self.default_headers or None,
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            try:
                await client.close()
            except RuntimeError:  # created on another (closed) loop
                pass

    def _classify(self, exc: BaseException) -> ErrorInfo | None:
        return classify_sdk_error(
            exc,
            status_error=self.sdk.APIStatusError,
            connection_error=self.sdk.APIConnectionError,
            timeout_error=self.sdk.APITimeoutError,
            api_error=self.sdk.APIError,
        )

    def _error(
        self, info: ErrorInfo, attempts: int, model: str = "", mid_stream: bool = False
    ) -> ProviderError:
        return build_provider_error(
            info,
            provider=self.name,
            base_url=self.base_url,
            model=model,
            api_key_env=self.api_key_env,
            attempts=attempts,
            mid_stream=mid_stream,
        )

    async def _with_retries(self, operation: Callable[[], Awaitable[T]], what: str, model: str = "") -> T:
        """Await `operation()` under the retry policy; failures become one-line ProviderErrors."""
        return await call_with_retries(
            operation,
            policy=self.retry_policy,
            classify=self._classify,
            to_error=lambda info, attempts: self._error(info, attempts, model),
            description=f"{self.name} {what}",
        )

    @contextlib.asynccontextmanager
    async def _reading(self, stream: Any, model: str) -> AsyncIterator[Any]:
        """Around the iteration of an SDK stream: map SDK (and unwrapped transport) errors to a
        mid-stream ProviderError, and always close the stream (also on cancellation or early exit)."""
        try:
            yield stream
        except Exception as exc:
            info = self._classify(exc)
            if info is None:
                raise
            raise self._error(info, 1, model, mid_stream=True) from exc
        finally:
            with contextlib.suppress(Exception):  # best-effort cleanup
                await stream.close()

    async def _sdk_models(self) -> list[Any]:
        """Every entry of the SDK's (paginated) model list, with retries."""
        client = self._get_client()

        async def fetch() -> list[Any]:
            return [model async for model in client.models.list()]

        return await self._with_retries(fetch, "model list")


def finish_reason(has_tool_calls: bool, raw: str | None, mapping: Mapping[str, str]) -> str:
    """The neutral finish reason: tool_use whenever calls were made, end_turn when the server sent none,
    else the server's reason through `mapping` ("unknown" when it is not there)."""
    if has_tool_calls:
        return "tool_use"
    if raw is None:
        return "end_turn"
    return mapping.get(raw, "unknown")


# the providers' own hosted endpoints: they always need a key (a local server may not)
_HOSTED = ("api.openai.com", "api.anthropic.com")


def _is_hosted(base_url: str) -> bool:
    from urllib.parse import urlparse

    return (urlparse(base_url).hostname or "") in _HOSTED


def _check_base_url(name: str, base_url: str) -> None:
    """A base_url that is not an http(s) URL is a configuration error, not a network error to retry."""
    from urllib.parse import urlparse

    try:
        parsed = urlparse(base_url)
        port_ok = parsed.port is None or 0 < parsed.port < 65536
    except ValueError:
        parsed, port_ok = None, False
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname or not port_ok:
        raise ConfigError(
            f"provider {name}: base_url {base_url!r} is not an http(s) URL (e.g. http://localhost:11434/v1)"
        )
