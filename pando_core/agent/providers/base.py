"""Provider-neutral request and streaming-event types every LLM provider speaks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


class ProviderError(Exception):
    """A provider failure with a one-line, user-facing message.

    kind: "auth", "model_not_found", "unreachable", "rate_limited", "server", "bad_request", "cancelled".
    """

    def __init__(self, message: str, kind: str = "server", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass
class ChatRequest:
    """One streaming request. `messages` use the stored message shape:
    {"role": "user"|"assistant"|"tool", "parts": [{"type": ..., "data": {...}}, ...]}
    with part types text{text}, reasoning{thinking}, tool_call{id,name,input(JSON str)},
    tool_result{tool_call_id,name,content,is_error}."""

    model: str
    system: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{name, description, parameters}]
    max_tokens: int = 4096
    temperature: float | None = None
    # Reasoning controls (providers ignore what they cannot use): "low" | "medium" | "high" | "max";
    # OpenAI reasoning models get `reasoning_effort`, Anthropic derives a thinking budget from it
    # unless `thinking_budget` (tokens) is given explicitly.
    reasoning_effort: str | None = None
    thinking_budget: int | None = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0


EventKind = Literal[
    "text_delta", "reasoning_delta", "tool_call_start", "tool_call_delta", "tool_call_end", "complete"
]


@dataclass
class ProviderEvent:
    """One streaming event.

    text_delta/reasoning_delta: `text`. tool_call_start: `tool_call_id`, `tool_name`.
    tool_call_delta: `tool_call_id`, `text` (an arguments fragment). tool_call_end: `tool_call_id`,
    `tool_name`, `arguments` (the complete JSON string). complete: `finish_reason`
    ("end_turn" | "tool_use" | "max_tokens" | "error"), `usage`, and `tool_calls` (every call, complete).
    """

    kind: EventKind
    text: str = ""
    tool_call_id: str = ""
    tool_name: str = ""
    arguments: str = ""
    finish_reason: str = ""
    usage: Usage | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # [{id, name, input}]
    # reasoning_delta only: an Anthropic thinking-block signature (sent with empty `text` when the block
    # ends). Store it as `signature` in the reasoning part's data so the block can be sent back.
    signature: str = ""


@dataclass
class ModelInfo:
    id: str
    provider: str
    context_window: int = 128_000
    max_output_tokens: int = 4096
    input_price_per_m: float = 0.0
    output_price_per_m: float = 0.0
    cached_input_price_per_m: float = 0.0
    cached_output_price_per_m: float = 0.0
    accepts_images: bool = False  # image parts may be sent (the model's `images` capability)


def tool_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of a neutral tool description; a bare properties map is wrapped in an object."""
    schema = dict(tool.get("parameters") or {})
    if "type" not in schema:
        schema = {"type": "object", "properties": schema, "required": list(tool.get("required") or [])}
    return schema


def image_mime(data: Mapping[str, Any]) -> str:
    """The media type of an image/binary part's data (both spellings are stored), PNG when unnamed."""
    return data.get("mime_type") or data.get("mimeType") or "image/png"


def attachment_text(data: Mapping[str, Any]) -> str:
    """A ``file`` part (an @mention: a file's text, a directory listing, or a file left out) as the
    text block the model reads."""
    path = str(data.get("path", "")).replace('"', "'")
    kind = data.get("kind")
    if kind == "skipped":
        return f'<file path="{path}" attached="no">{data.get("reason", "")}</file>'
    tag = "directory" if kind == "directory" else "file"
    note = ""
    if data.get("truncated"):
        note = f' truncated="first {len(str(data.get("text", "")).encode()):,} of {int(data.get("bytes", 0)):,} bytes"'
    return f'<{tag} path="{path}"{note}>\n{str(data.get("text", "")).rstrip()}\n</{tag}>'


def result_text(content: Any) -> str:
    """A tool_result part's content as the string the provider APIs take (non-strings as JSON)."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    return json.dumps(content)


@runtime_checkable
class Provider(Protocol):
    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]: ...

    async def list_models(self) -> list[ModelInfo]: ...

    async def aclose(self) -> None: ...
