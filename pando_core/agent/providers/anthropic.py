"""Anthropic Messages provider built on the official `anthropic` SDK.

Imports the SDK at module level: import this module lazily (the registry does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anthropic

from ...text import display_json
from .base import (
    ChatRequest,
    ModelInfo,
    ProviderEvent,
    Usage,
    attachment_text,
    image_mime,
    result_text,
    tool_parameters,
)
from .sdk_base import SdkProvider, finish_reason

DEFAULT_BASE_URL = "https://api.anthropic.com"
PLACEHOLDER_API_KEY = "missing-api-key"

_STOP_MAP = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "error",
}
# Share of max_tokens given to extended thinking per reasoning effort (spec §8.2).
_EFFORT_SHARE = {"low": 0.2, "medium": 0.4, "high": 0.8}
_MIN_THINKING_BUDGET = 1024
_CACHE = {"type": "ephemeral"}


class AnthropicProvider(SdkProvider):
    """Streams Anthropic Messages and lists models.

    `base_url` (default `ANTHROPIC_BASE_URL`, else api.anthropic.com) is the server root; a trailing
    ``/v1`` is stripped because the SDK appends ``/v1/messages`` itself. `prompt_cache` adds
    cache_control markers to the system prompt, the last tool and the last two messages. Retries and
    errors follow the same policy as the OpenAI provider (see retry.py).
    """

    sdk = anthropic
    sdk_client_class = "AsyncAnthropic"
    placeholder_api_key = PLACEHOLDER_API_KEY

    def __init__(
        self,
        name: str = "anthropic",
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 3,
        timeout: float = 180.0,  # seconds without a byte from the server (streaming included)
        *,
        connect_timeout: float = 10.0,
        api_key_env: str = "ANTHROPIC_API_KEY",
        base_url_env: str | None = "ANTHROPIC_BASE_URL",
        default_headers: Mapping[str, str] | None = None,
        prompt_cache: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 32.0,
    ) -> None:
        self._configure(
            name=name,
            base_url=base_url,
            base_url_env=base_url_env,
            default_base_url=DEFAULT_BASE_URL,
            api_key=api_key,
            api_key_env=api_key_env,
            timeout=timeout,
            connect_timeout=connect_timeout,
            default_headers=default_headers,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]  # the SDK appends /v1/messages itself
        self.prompt_cache = prompt_cache

    # --- requests ---------------------------------------------------------------------------------

    def build_params(self, request: ChatRequest) -> dict[str, Any]:
        """The messages.create keyword arguments for `request` (streaming)."""
        messages = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if request.system:
            system: dict[str, Any] = {"type": "text", "text": request.system}
            if self.prompt_cache:
                system["cache_control"] = dict(_CACHE)
            params["system"] = [system]
        if request.tools:
            tools = [to_anthropic_tool(t) for t in request.tools]
            if self.prompt_cache:
                tools[-1]["cache_control"] = dict(_CACHE)
            params["tools"] = tools
        if self.prompt_cache:
            _mark_cache(messages)
        budget = thinking_budget(request)
        if budget and _thinking_allowed(messages):
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
        elif request.temperature is not None:
            # Recent SDKs no longer accept `temperature` as a keyword; the API still does.
            params["extra_body"] = {"temperature": request.temperature}
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Stream `request`; see ProviderEvent for the event sequence. Raises ProviderError."""
        client = self._get_client()
        # undecodable file names and the like reach the API as escapes (see pando_core.text)
        params = display_json(self.build_params(request))
        stream = await self._with_retries(
            lambda: client.messages.create(**params), "messages request", request.model
        )
        usage = Usage()
        stop_reason: str | None = None
        blocks: dict[int, dict[str, str]] = {}  # index -> {type, id, name, json}
        calls: list[dict[str, str]] = []
        async with self._reading(stream, request.model):
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    _update_usage(usage, event.message.usage)
                elif kind == "content_block_start":
                    block = event.content_block
                    state = {"type": block.type, "id": "", "name": "", "json": ""}
                    blocks[event.index] = state
                    if block.type == "tool_use":
                        state["id"], state["name"] = block.id, block.name
                        yield ProviderEvent(
                            kind="tool_call_start", tool_call_id=block.id, tool_name=block.name
                        )
                    elif block.type == "text" and getattr(block, "text", ""):
                        yield ProviderEvent(kind="text_delta", text=block.text)
                    elif block.type == "thinking" and getattr(block, "thinking", ""):
                        yield ProviderEvent(kind="reasoning_delta", text=block.thinking)
                elif kind == "content_block_delta":
                    delta = event.delta
                    state = blocks.get(event.index) or {}
                    if delta.type == "text_delta" and delta.text:
                        yield ProviderEvent(kind="text_delta", text=delta.text)
                    elif delta.type == "thinking_delta" and delta.thinking:
                        yield ProviderEvent(kind="reasoning_delta", text=delta.thinking)
                    elif delta.type == "signature_delta" and delta.signature:
                        yield ProviderEvent(kind="reasoning_delta", signature=delta.signature)
                    elif delta.type == "input_json_delta" and delta.partial_json and state:
                        state["json"] += delta.partial_json
                        yield ProviderEvent(
                            kind="tool_call_delta", tool_call_id=state["id"], text=delta.partial_json
                        )
                elif kind == "content_block_stop":
                    state = blocks.get(event.index) or {}
                    if state.get("type") == "tool_use":
                        arguments = state["json"] if state["json"].strip() else "{}"
                        calls.append({"id": state["id"], "name": state["name"], "input": arguments})
                        yield ProviderEvent(
                            kind="tool_call_end",
                            tool_call_id=state["id"],
                            tool_name=state["name"],
                            arguments=arguments,
                        )
                elif kind == "message_delta":
                    if event.delta.stop_reason:
                        stop_reason = event.delta.stop_reason
                    _update_usage(usage, event.usage)

        yield ProviderEvent(
            kind="complete",
            finish_reason=finish_reason(bool(calls), stop_reason, _STOP_MAP),
            usage=usage,
            tool_calls=calls,
        )

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=m.id,
                provider=self.name,
                context_window=getattr(m, "max_input_tokens", None) or 200_000,
                max_output_tokens=getattr(m, "max_tokens", None) or 8192,
            )
            for m in await self._sdk_models()
        ]


# ------------------------------------------------------------------------------------ conversions


def _update_usage(usage: Usage, source: Any) -> None:
    """Merge Anthropic usage (message_start has input/cache counts, message_delta the cumulative output)."""
    if source is None:
        return
    for attr, target in (
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_creation_input_tokens", "cache_creation_tokens"),
        ("cache_read_input_tokens", "cache_read_tokens"),
    ):
        value = getattr(source, attr, None)
        if value is not None:
            setattr(usage, target, int(value))


def thinking_budget(request: ChatRequest) -> int | None:
    """Extended-thinking budget for `request` (None = thinking off). Must stay below max_tokens."""
    budget = request.thinking_budget
    if budget is None and request.reasoning_effort:
        effort = request.reasoning_effort.lower()
        if effort == "max":
            budget = request.max_tokens - 1
        elif effort in _EFFORT_SHARE:
            budget = int(request.max_tokens * _EFFORT_SHARE[effort])
    if not budget:
        return None
    budget = min(max(budget, _MIN_THINKING_BUDGET), request.max_tokens - 1)
    return budget if budget >= _MIN_THINKING_BUDGET else None


def _thinking_allowed(messages: list[dict[str, Any]]) -> bool:
    """With thinking on, an assistant turn that used tools must start with a (signed) thinking block;
    when the latest one does not (history from another model, unsigned), thinking is left off."""
    for message in reversed(messages):
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if not any(b.get("type") == "tool_use" for b in content):
            return True
        return bool(content) and content[0].get("type") == "thinking"
    return True


def _mark_cache(messages: list[dict[str, Any]]) -> None:
    """cache_control on the last cacheable block of the last two messages."""
    for message in messages[-2:]:
        for block in reversed(message["content"]):
            if block.get("type") not in ("thinking", "redacted_thinking"):
                block["cache_control"] = dict(_CACHE)
                break


def to_anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": tool["name"],
        "description": tool.get("description", ""),
        "input_schema": tool_parameters(tool),
    }


def _tool_input(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw.strip():
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {"value": value}
    return {}


def to_anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages → Anthropic messages: tool results become tool_result blocks at the start of a
    user message, consecutive same-role messages are merged, empty messages dropped, and a history
    that starts with an assistant message (e.g. a compaction summary) gets a short user turn first."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = message.get("parts") or []
        role = "assistant" if message.get("role") == "assistant" else "user"
        results: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        thinking: list[dict[str, Any]] = []
        for part in parts:
            kind = part.get("type")
            data = part.get("data") or {}
            if kind == "text" and data.get("text"):
                blocks.append({"type": "text", "text": str(data["text"])})
            elif kind == "reasoning" and role == "assistant":
                if data.get("thinking") and data.get("signature"):  # unsigned thinking cannot be sent back
                    thinking.append(
                        {"type": "thinking", "thinking": data["thinking"], "signature": data["signature"]}
                    )
            elif kind == "tool_call" and role == "assistant":
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": data.get("id", ""),
                        "name": data.get("name", ""),
                        "input": _tool_input(data.get("input")),
                    }
                )
            elif kind == "tool_result":
                result: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": data.get("tool_call_id", ""),
                    "content": result_text(data.get("content")),
                }
                if data.get("is_error"):
                    result["is_error"] = True
                results.append(result)
            elif kind == "file" and role == "user":
                blocks.append({"type": "text", "text": attachment_text(data)})
            elif kind in ("image", "binary") and role == "user" and data.get("data"):
                source = {"type": "base64", "media_type": image_mime(data), "data": data["data"]}
                blocks.append({"type": "image", "source": source})
        content = results + thinking + blocks
        if not content:
            continue
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            if role == "user":  # tool results must lead the user turn
                merged = [b for b in previous + content if b["type"] == "tool_result"]
                merged += [b for b in previous + content if b["type"] != "tool_result"]
                out[-1]["content"] = merged
            else:
                out[-1]["content"] = previous + content
        else:
            out.append({"role": role, "content": content})
    if out and out[0]["role"] == "assistant":
        out.insert(
            0, {"role": "user", "content": [{"type": "text", "text": "(continuing the conversation)"}]}
        )
    return out


__all__ = [
    "AnthropicProvider",
    "thinking_budget",
    "to_anthropic_messages",
    "to_anthropic_tool",
]
