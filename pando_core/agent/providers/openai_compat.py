"""OpenAI Chat Completions provider (OpenAI itself and every OpenAI-compatible server:
Ollama, vLLM, LM Studio, llama.cpp, OpenRouter, Groq, ...), built on the official `openai` SDK.

Imports the SDK at module level: import this module lazily (the registry does).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import openai

from ...text import display_json
from .base import (
    ChatRequest,
    ModelInfo,
    ProviderError,
    ProviderEvent,
    Usage,
    attachment_text,
    image_mime,
    result_text,
    tool_parameters,
)
from .sdk_base import SdkProvider, finish_reason

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers accept any key but the SDK insists on one.
PLACEHOLDER_API_KEY = "not-needed"

_FINISH_MAP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}
_REASONING_MODEL = re.compile(r"^(o\d+|gpt-5)([-.].*)?$")


def is_reasoning_model(model: str) -> bool:
    """OpenAI reasoning models take `max_completion_tokens`/`reasoning_effort`, not `max_tokens`/temperature."""
    return bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1].lower()))


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""
    started: bool = False


class OpenAICompatibleProvider(SdkProvider):
    """Streams chat completions and lists models from an OpenAI-compatible endpoint.

    `api_key`/`base_url` default to the `api_key_env` / `base_url_env` environment variables; without a
    key a placeholder is sent (fine for local servers). The SDK's own retries are disabled: 429, 5xx,
    timeouts and connection errors are retried here (`max_retries`, exponential backoff from
    `backoff_base` seconds with jitter, capped at `backoff_max`, honouring Retry-After).
    """

    sdk = openai
    sdk_client_class = "AsyncOpenAI"
    placeholder_api_key = PLACEHOLDER_API_KEY

    def __init__(
        self,
        name: str = "openai",
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 3,
        timeout: float = 180.0,  # seconds without a byte from the server (streaming included)
        *,
        connect_timeout: float = 10.0,
        api_key_env: str = "OPENAI_API_KEY",
        base_url_env: str | None = "OPENAI_BASE_URL",
        default_base_url: str = DEFAULT_BASE_URL,
        default_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        backoff_base: float = 2.0,
        backoff_max: float = 32.0,
        send_reasoning_content: bool = True,
    ) -> None:
        self._configure(
            name=name,
            base_url=base_url,
            base_url_env=base_url_env,
            default_base_url=default_base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            timeout=timeout,
            connect_timeout=connect_timeout,
            default_headers=default_headers,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self.extra_body = dict(extra_body or {})
        self.send_reasoning_content = send_reasoning_content

    # --- requests ---------------------------------------------------------------------------------

    def build_params(self, request: ChatRequest) -> dict[str, Any]:
        """The chat.completions.create keyword arguments for `request` (streaming)."""
        # messages and tools are already plain JSON: they go in extra_body (the SDK requires a `messages`
        # argument, so it gets an empty list), which skips the SDK's recursive TypedDict transform that
        # costs milliseconds per request on long histories
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if is_reasoning_model(request.model):
            params["max_completion_tokens"] = request.max_tokens
            if request.reasoning_effort:
                effort = "high" if request.reasoning_effort == "max" else request.reasoning_effort
                params["reasoning_effort"] = effort
        else:
            params["max_tokens"] = request.max_tokens
            if request.temperature is not None:
                params["temperature"] = request.temperature
        body: dict[str, Any] = {
            "messages": to_openai_messages(request, send_reasoning_content=self.send_reasoning_content)
        }
        if request.tools:
            body["tools"] = [to_openai_tool(t) for t in request.tools]
        if self.extra_body:
            body.update(self.extra_body)
        params["extra_body"] = body
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Stream `request`; see ProviderEvent for the event sequence. Raises ProviderError.

        Close the generator (``contextlib.aclosing``) if you stop consuming early; cancelling the
        consuming task closes the HTTP response immediately.
        """
        client = self._get_client()
        # undecodable file names and the like reach the API as escapes (see pando_core.text)
        params = display_json(self.build_params(request))
        stream = await self._with_retries(
            lambda: client.chat.completions.create(**params), "chat request", request.model
        )
        tools = _ToolCallAccumulator()
        finish: str | None = None
        usage = Usage()
        async with self._reading(stream, request.model):
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = map_usage(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None:
                        reasoning = _reasoning_text(delta)
                        if reasoning:
                            yield ProviderEvent(kind="reasoning_delta", text=reasoning)
                        if delta.content:
                            yield ProviderEvent(kind="text_delta", text=delta.content)
                        for tool_delta in delta.tool_calls or []:
                            for event in tools.add(tool_delta):
                                yield event
                    if choice.finish_reason:
                        finish = choice.finish_reason

        complete_calls = []
        for call in tools.calls:
            if not call.started:  # a call that never got a name: still report it
                call.started = True
                call.id = call.id or _new_call_id()
                yield ProviderEvent(kind="tool_call_start", tool_call_id=call.id, tool_name=call.name)
            arguments = call.arguments if call.arguments.strip() else "{}"
            yield ProviderEvent(
                kind="tool_call_end", tool_call_id=call.id, tool_name=call.name, arguments=arguments
            )
            complete_calls.append({"id": call.id, "name": call.name, "input": arguments})
        yield ProviderEvent(
            kind="complete",
            finish_reason=finish_reason(bool(complete_calls), finish, _FINISH_MAP),
            usage=usage,
            tool_calls=complete_calls,
        )

    async def list_models(self) -> list[ModelInfo]:
        return [model_info(self.name, m) for m in await self._sdk_models()]


# ------------------------------------------------------------------------------------ conversions


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _reasoning_text(delta: Any) -> str:
    """DeepSeek/vLLM send `reasoning_content`, Ollama/OpenRouter `reasoning`; prefer the former."""
    for attr in ("reasoning_content", "reasoning"):
        value = getattr(delta, attr, None)
        if isinstance(value, str) and value:
            return value
    return ""


class _ToolCallAccumulator:
    """Assembles streamed tool-call deltas (keyed by their `index`) into complete calls."""

    def __init__(self) -> None:
        self.calls: list[_ToolCall] = []
        self._by_index: dict[int, _ToolCall] = {}

    def add(self, tool_delta: Any) -> list[ProviderEvent]:
        events: list[ProviderEvent] = []
        index = getattr(tool_delta, "index", None)
        if index is None:
            index = len(self.calls)
        call = self._by_index.get(index)
        new_id = getattr(tool_delta, "id", None) or ""
        if call is not None and new_id and call.id and new_id != call.id:
            call = None  # some servers reuse index 0 for every call: a different id is a new call
        if call is None:
            call = _ToolCall()
            self.calls.append(call)
            self._by_index[index] = call
        if new_id and not call.id:
            call.id = new_id
        function = getattr(tool_delta, "function", None)
        name = getattr(function, "name", None) if function is not None else None
        if name and not call.name:
            call.name = name
        fragment = getattr(function, "arguments", None) if function is not None else None
        if not call.started and call.name:
            call.started = True
            call.id = call.id or _new_call_id()
            events.append(ProviderEvent(kind="tool_call_start", tool_call_id=call.id, tool_name=call.name))
            if call.arguments:  # fragments that arrived before the name
                events.append(
                    ProviderEvent(kind="tool_call_delta", tool_call_id=call.id, text=call.arguments)
                )
        if fragment:
            call.arguments += fragment
            if call.started:
                events.append(ProviderEvent(kind="tool_call_delta", tool_call_id=call.id, text=fragment))
        return events


def map_usage(usage: Any) -> Usage:
    """OpenAI usage → Usage: input = prompt − cached, cache_read = cached."""
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    if not cached:  # DeepSeek reports cache hits in its own field
        cached = int(getattr(usage, "prompt_cache_hit_tokens", 0) or 0)
    cached = min(cached, prompt)
    return Usage(input_tokens=prompt - cached, output_tokens=completion, cache_read_tokens=cached)


def to_openai_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool.get("description", ""),
            "parameters": tool_parameters(tool),
        },
    }


def _image_url(data: Mapping[str, Any]) -> str | None:
    if data.get("url"):
        return str(data["url"])
    payload = data.get("data")
    if not payload:
        return None
    return f"data:{image_mime(data)};base64,{payload}"


def to_openai_messages(request: ChatRequest, *, send_reasoning_content: bool = True) -> list[dict[str, Any]]:
    """Neutral messages → OpenAI chat messages: system first; assistant content (always set) +
    tool_calls (+ reasoning_content); one `tool` message per tool_result; messages without parts dropped."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        parts = message.get("parts") or []
        if not parts:
            continue
        role = message.get("role")
        texts: list[str] = []
        reasoning: list[str] = []
        images: list[str] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for part in parts:
            kind = part.get("type")
            data = part.get("data") or {}
            if kind == "text" and data.get("text"):
                texts.append(str(data["text"]))
            elif kind == "reasoning" and data.get("thinking"):
                reasoning.append(str(data["thinking"]))
            elif kind == "tool_call":
                calls.append(data)
            elif kind == "tool_result":
                results.append(data)
            elif kind == "file" and role != "assistant":
                texts.append(attachment_text(data))
            elif kind in ("image", "binary"):
                url = _image_url(data)
                if url:
                    images.append(url)
        if role == "assistant":
            if not (texts or calls or reasoning):
                continue
            entry: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c.get("id") or _new_call_id(),
                        "type": "function",
                        "function": {"name": c.get("name", ""), "arguments": c.get("input") or "{}"},
                    }
                    for c in calls
                ]
            if reasoning and send_reasoning_content:
                entry["reasoning_content"] = "".join(reasoning)
            out.append(entry)
            continue
        for result in results:
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": result.get("tool_call_id", ""),
                    "content": result_text(result.get("content")),
                }
            )
        if texts or images:
            text = "\n".join(texts)
            if images:
                content: Any = [{"type": "text", "text": text}] if text else []
                content += [{"type": "image_url", "image_url": {"url": url}} for url in images]
            else:
                content = text
            out.append({"role": "system" if role == "system" else "user", "content": content})
    return out


def model_info(provider: str, model: Any) -> ModelInfo:
    """ModelInfo from a /models entry, reading the extra fields some servers add
    (OpenRouter `context_length`/`pricing`, vLLM `max_model_len`, ...)."""
    extra = dict(getattr(model, "model_extra", None) or {})
    info = ModelInfo(id=str(model.id), provider=provider)
    for key in ("context_length", "context_window", "max_model_len", "max_context_length"):
        value = extra.get(key)
        if isinstance(value, int) and value > 0:
            info.context_window = value
            break
    top = extra.get("top_provider")
    if isinstance(top, Mapping) and isinstance(top.get("max_completion_tokens"), int):
        info.max_output_tokens = top["max_completion_tokens"]
    pricing = extra.get("pricing")
    if isinstance(pricing, Mapping):  # OpenRouter: USD per token, as strings
        try:
            info.input_price_per_m = float(pricing.get("prompt") or 0) * 1_000_000
            info.output_price_per_m = float(pricing.get("completion") or 0) * 1_000_000
            # Pando's cost formula charges cache writes at the "cached input" price and cache
            # reads at the "cached output" price (spec §6.7).
            info.cached_input_price_per_m = float(pricing.get("input_cache_write") or 0) * 1_000_000
            info.cached_output_price_per_m = float(pricing.get("input_cache_read") or 0) * 1_000_000
        except (TypeError, ValueError):
            pass
    return info


__all__ = [
    "DEFAULT_BASE_URL",
    "OpenAICompatibleProvider",
    "ProviderError",
    "is_reasoning_model",
    "map_usage",
    "model_info",
    "to_openai_messages",
    "to_openai_tool",
]
