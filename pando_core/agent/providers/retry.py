"""Retry/backoff policy and SDK-error classification shared by the HTTP providers.

Nothing here imports an SDK: providers pass their SDK's exception classes to `classify_sdk_error`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ...errors import one_line
from .base import ProviderError

log = logging.getLogger("pando.providers")

T = TypeVar("T")

_RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass
class RetryPolicy:
    """Exponential backoff: retry n (1-based) waits ``base_delay * 2**(n-1)`` plus up to `jitter`
    (a fraction) more, capped at `max_delay`; a server's Retry-After replaces the computed delay
    (still capped). Failures to connect at all (refused, DNS) are retried at most
    `max_connect_retries` times so a down local server is reported quickly."""

    max_retries: int = 3
    base_delay: float = 2.0
    max_delay: float = 32.0
    jitter: float = 0.2
    max_connect_retries: int = 1

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay))
        base = self.base_delay * (2 ** max(0, retry - 1))
        return max(0.0, min(base * (1.0 + random.uniform(0.0, self.jitter)), self.max_delay))


@dataclass
class ErrorInfo:
    """A provider failure, classified.

    kind: a ProviderError kind. connect: the connection could not be established (refused, DNS,
    connect timeout). timeout: the request timed out. detail: a one-line server message or cause.
    """

    kind: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    connect: bool = False
    timeout: bool = False
    detail: str = ""


def parse_retry_after(headers: Mapping[str, str] | Any | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def error_body_message(body: Any) -> tuple[str, str]:
    """(message, code-or-type) from an OpenAI ``{"error": {...}}``, an Anthropic
    ``{"type": "error", "error": {...}}``, an SDK-unwrapped error object or a plain string."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return str(inner.get("message") or ""), str(inner.get("code") or inner.get("type") or "")
        if isinstance(inner, str):
            return inner, str(body.get("code") or body.get("type") or "")
        message = body.get("message") or body.get("detail") or ""
        code = body.get("code") or (body.get("type") if body.get("type") != "error" else "") or ""
        return str(message), str(code)
    if isinstance(body, str):
        return body, ""
    return "", ""


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def connection_failure(exc: BaseException) -> tuple[bool, str]:
    """(could-not-connect, short reason) for a connection-level exception chain."""
    chain = _exception_chain(exc)
    names = {type(e).__name__ for e in chain}
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return True, "connection refused"
        if isinstance(e, socket.gaierror):
            return True, "host name could not be resolved"
        if isinstance(e, ssl.SSLError):
            return True, f"TLS error: {one_line(e, 120)}"
    connect = bool(names & {"ConnectError", "ConnectTimeout"})
    for e in reversed(chain):  # the innermost message is usually the most specific
        text = one_line(e, 160)
        if text and text not in ("Connection error.", "Request timed out."):
            lowered = text.lower()
            if "refused" in lowered or "all connection attempts failed" in lowered:
                return True, "connection refused"
            if "name or service not known" in lowered or "nodename nor servname" in lowered:
                return True, "host name could not be resolved"
            return connect, text
    return connect, "connection failed"


def classify_sdk_error(
    exc: BaseException,
    *,
    status_error: type[BaseException],
    connection_error: type[BaseException],
    timeout_error: type[BaseException],
    api_error: type[BaseException],
) -> ErrorInfo | None:
    """Classify an OpenAI/Anthropic SDK exception (both SDKs share this shape). None = not an SDK error."""
    if isinstance(exc, (timeout_error, connection_error)):
        return _connection_error_info(exc, timeout=isinstance(exc, timeout_error))
    if isinstance(exc, status_error):
        status = int(getattr(exc, "status_code", 0) or 0)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        body = getattr(exc, "body", None)
        message, code = error_body_message(body)
        if not message:
            message = str(getattr(exc, "message", "") or exc)
        return classify_status(status, message, code, parse_retry_after(headers))
    if isinstance(exc, api_error):  # e.g. an error event inside a 200 stream, or an invalid response
        body = getattr(exc, "body", None)
        message, code = error_body_message(body)
        return classify_status(0, message or str(exc), code, None)
    return classify_transport_error(exc)


def classify_transport_error(exc: BaseException) -> ErrorInfo | None:
    """An httpx/httpx2 transport error that an SDK let through unwrapped (e.g. while iterating a stream)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TransportError" not in names:
        return None
    return _connection_error_info(exc, timeout="TimeoutException" in names)


def _connection_error_info(exc: BaseException, *, timeout: bool) -> ErrorInfo:
    """A timed-out or failed connection/request (always retryable)."""
    connect, reason = connection_failure(exc)
    if timeout:
        return ErrorInfo(
            kind="unreachable" if connect else "server",
            retryable=True,
            connect=connect,
            timeout=True,
            detail="connect timed out" if connect else "request timed out",
        )
    return ErrorInfo(kind="unreachable", retryable=True, connect=connect, detail=reason)


def classify_status(status: int, message: str, code: str = "", retry_after: float | None = None) -> ErrorInfo:
    """Classify an HTTP error status (0 = an error reported inside a successful stream)."""
    detail = one_line(message or f"HTTP {status}", 300)
    lowered = f"{code} {message}".lower()
    model_missing = "model_not_found" in lowered or (
        "model" in lowered
        and ("not found" in lowered or "does not exist" in lowered or "not exist" in lowered)
    )
    if status in (401, 403) or code in ("authentication_error", "permission_error", "invalid_api_key"):
        return ErrorInfo(kind="auth", retryable=False, status=status or None, detail=detail)
    if status == 404 or (status in (400, 422) and model_missing):
        return ErrorInfo(kind="model_not_found", retryable=False, status=status, detail=detail)
    if status == 413 or code == "request_too_large":
        return ErrorInfo(
            kind="bad_request", retryable=False, status=status or None, detail="request too large"
        )
    if status == 429 or code in ("rate_limit_error", "rate_limit_exceeded", "insufficient_quota"):
        final = "insufficient_quota" in lowered or "quota" in code
        return ErrorInfo(
            kind="rate_limited",
            retryable=status == 429 and not final,
            status=status or None,
            retry_after=retry_after,
            detail=detail,
        )
    if status >= 500 or status in _RETRYABLE_STATUS:
        return ErrorInfo(kind="server", retryable=True, status=status, retry_after=retry_after, detail=detail)
    if status == 0:  # mid-stream error event (overloaded, api_error, ...)
        return ErrorInfo(kind="server", retryable=False, detail=detail)
    return ErrorInfo(kind="bad_request", retryable=False, status=status, detail=detail)


def build_provider_error(
    info: ErrorInfo,
    *,
    provider: str,
    base_url: str,
    model: str = "",
    api_key_env: str = "",
    attempts: int = 1,
    mid_stream: bool = False,
) -> ProviderError:
    """A ProviderError with a clear one-line message for `info`."""
    status = info.status
    after = f" after {attempts} attempts" if attempts > 1 else ""
    if info.kind == "auth":
        hint = f": check {api_key_env}" if api_key_env else ": check the API key"
        what = "permission denied" if status == 403 else "authentication failed"
        msg = f"{what} for provider {provider} at {base_url}{hint} ({info.detail})"
    elif info.kind == "model_not_found":
        msg = f"model {model!r} not found at provider {provider} ({base_url}): {info.detail}"
    elif info.kind == "unreachable" and mid_stream:
        msg = f"connection to provider {provider} at {base_url} was lost mid-stream: {info.detail}"
    elif info.kind == "unreachable":
        msg = f"cannot reach provider {provider} at {base_url}{after}: {info.detail}"
    elif info.kind == "rate_limited":
        code = f" (HTTP {status})" if status else ""
        msg = f"rate limited by provider {provider}{code}{after}: {info.detail}"
    elif info.kind == "bad_request":
        code = f" (HTTP {status})" if status else ""
        msg = f"provider {provider} rejected the request{code}: {info.detail}"
    elif info.timeout:
        msg = f"request to provider {provider} at {base_url} timed out{after}"
    elif mid_stream:
        msg = f"provider {provider} reported an error mid-stream: {info.detail}"
    else:
        code = f" (HTTP {status})" if status else ""
        msg = f"provider {provider} server error{code}{after}: {info.detail}"
    return ProviderError(one_line(msg, 500), kind=info.kind, status=status)


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], ErrorInfo | None],
    to_error: Callable[[ErrorInfo, int], ProviderError],
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    description: str = "request",
) -> T:
    """Await `operation()`, retrying retryable failures per `policy`.

    Unclassified exceptions (and cancellation) propagate untouched; a classified failure that is not
    retried any more is raised as ``to_error(info, attempts)`` chained to the original exception.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:
            info = classify(exc)
            if info is None:
                raise
            limit = (
                min(policy.max_retries, policy.max_connect_retries) if info.connect else policy.max_retries
            )
            if not info.retryable or attempt > limit:
                raise to_error(info, attempt) from exc
            delay = policy.delay(attempt, info.retry_after)
            log.info(
                "%s failed (%s%s), retry %d/%d in %.2fs",
                description,
                info.kind,
                f" HTTP {info.status}" if info.status else "",
                attempt,
                limit,
                delay,
            )
            await sleep(delay)
