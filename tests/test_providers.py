"""OpenAI-compatible and Anthropic providers against ScriptedModelServer over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from pando_core.agent.providers.base import ChatRequest, Provider, ProviderError, ProviderEvent
from pando_core.agent.providers.registry import (
    create_provider,
    parse_model_ref,
    provider_kinds,
    register_provider_kind,
    unregister_provider_kind,
)
from pando_core.agent.providers.retry import RetryPolicy, parse_retry_after
from pando_core.errors import ConfigError
from pando_core.testing.model_server import Reply, ScriptedModelServer

T = TypeVar("T")
KINDS = ["openai", "anthropic"]


def run(coro: Awaitable[T], timeout: float = 15) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


def make(kind: str, server: ScriptedModelServer, **options: Any) -> Provider:
    options.setdefault("api_key", "test-key")
    options.setdefault("backoff_base", 0.01)
    url = server.base_url if kind == "openai" else server.root_url
    return create_provider(kind, base_url=url, **options)


def request(text: str = "hi", **extra: Any) -> ChatRequest:
    return ChatRequest(
        model=extra.pop("model", "test-model"),
        system=extra.pop("system", "be brief"),
        messages=[{"role": "user", "parts": [{"type": "text", "data": {"text": text}}]}],
        **extra,
    )


async def collect(provider: Provider, req: ChatRequest) -> list[ProviderEvent]:
    try:
        return [event async for event in provider.stream(req)]
    finally:
        await provider.aclose()


def kinds_of(events: list[ProviderEvent]) -> list[str]:
    return [e.kind for e in events]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server():
    with ScriptedModelServer() as srv:
        yield srv


# ------------------------------------------------------------------------------------ streaming


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_streams_text_and_reasoning(kind: str, server: ScriptedModelServer) -> None:
    server.script(Reply.text("Hello, world!", reasoning="let me think", chunk_size=3))
    events = run(collect(make(kind, server), request()))
    text = "".join(e.text for e in events if e.kind == "text_delta")
    reasoning = "".join(e.text for e in events if e.kind == "reasoning_delta")
    assert text == "Hello, world!"
    assert reasoning == "let me think"
    assert len([e for e in events if e.kind == "text_delta"]) == 5  # streamed in pieces
    assert kinds_of(events)[-1] == "complete"
    assert events[-1].finish_reason == "end_turn" and events[-1].tool_calls == []
    if kind == "anthropic":
        assert [e.signature for e in events if e.signature] == ["sig-test"]
    body = server.requests[0]
    assert body["stream"] is True and body["model"] == "test-model"
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "be brief"}
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert body["system"][0]["text"] == "be brief"


def test_openai_reasoning_field_used_by_ollama(server: ScriptedModelServer) -> None:
    server.script(Reply.text("ok", reasoning="thinking...", reasoning_field="reasoning"))
    events = run(collect(make("openai", server), request()))
    assert "".join(e.text for e in events if e.kind == "reasoning_delta") == "thinking..."


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_tool_call_with_fragmented_arguments(kind: str, server: ScriptedModelServer) -> None:
    arguments = {"file_path": "src/a.txt", "content": "line one\nline two"}
    server.script(Reply.tool("write", arguments, id="call_abc", text="Writing.", chunk_size=4))
    req = request(tools=[{"name": "write", "description": "write a file", "parameters": {"type": "object"}}])
    events = run(collect(make(kind, server), req))
    tool_events = [e for e in events if e.kind.startswith("tool_call")]
    assert tool_events[0].kind == "tool_call_start"
    assert (tool_events[0].tool_call_id, tool_events[0].tool_name) == ("call_abc", "write")
    deltas = [e for e in tool_events if e.kind == "tool_call_delta"]
    assert len(deltas) > 5 and all(e.tool_call_id == "call_abc" for e in deltas)
    assert tool_events[-1].kind == "tool_call_end" and kinds_of(tool_events[1:-1]) == [
        "tool_call_delta"
    ] * len(deltas)
    assembled = "".join(e.text for e in deltas)
    assert json.loads(assembled) == arguments
    assert tool_events[-1].arguments == assembled
    # text arrives before the tool call, complete comes last
    assert kinds_of(events).index("text_delta") < kinds_of(events).index("tool_call_start")
    complete = events[-1]
    assert complete.kind == "complete" and complete.finish_reason == "tool_use"
    assert complete.tool_calls == [{"id": "call_abc", "name": "write", "input": assembled}]
    body = server.requests[0]
    if kind == "openai":
        assert body["tools"][0]["function"]["name"] == "write"
    else:
        assert body["tools"][0]["name"] == "write" and "input_schema" in body["tools"][0]


@pytest.mark.parametrize("kind", KINDS)
def test_multiple_tool_calls_and_empty_arguments(kind: str, server: ScriptedModelServer) -> None:
    server.script(
        Reply.tools({"name": "ls", "arguments": ""}, {"name": "view", "arguments": {"file_path": "x"}})
    )
    events = run(collect(make(kind, server), request()))
    ends = [e for e in events if e.kind == "tool_call_end"]
    assert [e.tool_name for e in ends] == ["ls", "view"]
    assert ends[0].arguments == "{}"
    assert len({e.tool_call_id for e in ends}) == 2
    assert [c["name"] for c in events[-1].tool_calls] == ["ls", "view"]


@pytest.mark.parametrize(
    ("kind", "finish", "expected"),
    [
        ("openai", "length", "max_tokens"),
        ("anthropic", "max_tokens", "max_tokens"),
        ("openai", "stop", "end_turn"),
    ],
)
def test_finish_reason_mapping(kind: str, finish: str, expected: str, server: ScriptedModelServer) -> None:
    server.script(Reply(text="cut", finish_reason=finish))
    events = run(collect(make(kind, server), request()))
    assert events[-1].finish_reason == expected


@pytest.mark.parametrize("kind", KINDS)
def test_usage_mapping(kind: str, server: ScriptedModelServer) -> None:
    server.script(
        Reply.text("x", usage={"prompt_tokens": 120, "completion_tokens": 30, "cached_tokens": 100})
    )
    usage = run(collect(make(kind, server), request()))[-1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (20, 30, 100)
    assert usage.cache_creation_tokens == 0


# ---------------------------------------------------------------------------------- conversions


def conversation() -> list[dict[str, Any]]:
    return [
        {"role": "user", "parts": [{"type": "text", "data": {"text": "make a file"}}]},
        {"role": "assistant", "parts": []},  # dropped
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "data": {"thinking": "plan", "signature": "s1"}},
                {"type": "text", "data": {"text": "Sure."}},
                {"type": "tool_call", "data": {"id": "c1", "name": "write", "input": '{"file_path": "a"}'}},
                {"type": "tool_call", "data": {"id": "c2", "name": "ls", "input": ""}},
            ],
        },
        {
            "role": "tool",
            "parts": [
                {"type": "tool_result", "data": {"tool_call_id": "c1", "name": "write", "content": "ok"}},
                {
                    "type": "tool_result",
                    "data": {"tool_call_id": "c2", "name": "ls", "content": "boom", "is_error": True},
                },
            ],
        },
    ]


def test_openai_message_conversion(server: ScriptedModelServer) -> None:
    req = ChatRequest(model="test-model", system="sys", messages=conversation())
    run(collect(make("openai", server), req))
    messages = server.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assistant = messages[2]
    assert assistant["content"] == "Sure." and assistant["reasoning_content"] == "plan"
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["write", "ls"]
    assert assistant["tool_calls"][1]["function"]["arguments"] == "{}"
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert messages[4]["tool_call_id"] == "c2"


def test_anthropic_message_conversion(server: ScriptedModelServer) -> None:
    req = ChatRequest(model="test-model", system="sys", messages=conversation(), thinking_budget=2000)
    run(collect(make("anthropic", server), req))
    body = server.requests[0]
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[1]["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert messages[1]["content"][2]["input"] == {"file_path": "a"}
    assert messages[1]["content"][3]["input"] == {}
    results = messages[2]["content"]
    assert [(b["type"], b["tool_use_id"]) for b in results] == [("tool_result", "c1"), ("tool_result", "c2")]
    assert results[1]["is_error"] is True
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" in messages[-1]["content"][-1]


def test_anthropic_thinking_off_without_signed_block(server: ScriptedModelServer) -> None:
    history = conversation()
    del history[2]["parts"][0]["data"]["signature"]
    req = ChatRequest(
        model="test-model", system="", messages=history, reasoning_effort="high", temperature=0.2
    )
    run(collect(make("anthropic", server), req))
    body = server.requests[0]
    assert "thinking" not in body and body["temperature"] == 0.2
    assert "system" not in body


# ------------------------------------------------------------------------------ errors & retries


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_then_success_honours_retry_after(kind: str, server: ScriptedModelServer) -> None:
    server.script(Reply.error(429, retry_after=0), Reply.error(503, retry_after=0), Reply.text("finally"))
    # a huge backoff base proves Retry-After (0 s) is what is honoured
    provider = make(kind, server, backoff_base=30)
    events = run(collect(provider, request()))
    assert "".join(e.text for e in events if e.kind == "text_delta") == "finally"
    assert len(server.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_persistent_server_error_gives_up_after_max_retries(kind: str, server: ScriptedModelServer) -> None:
    server.set_default(Reply.error(500, "internal kaboom"))
    with pytest.raises(ProviderError) as info:
        run(collect(make(kind, server, max_retries=2), request()))
    assert info.value.kind == "server" and info.value.status == 500
    assert "internal kaboom" in str(info.value) and "3 attempts" in str(info.value)
    assert len(server.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limited_after_retries(kind: str, server: ScriptedModelServer) -> None:
    server.set_default(Reply.error(429, retry_after=0))
    with pytest.raises(ProviderError) as info:
        run(collect(make(kind, server, max_retries=1), request()))
    assert info.value.kind == "rate_limited" and len(server.requests) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_auth_error_names_provider_url_and_env_var(kind: str) -> None:
    with ScriptedModelServer(api_key="right") as server:
        provider = make(kind, server, api_key="wrong")
        with pytest.raises(ProviderError) as info:
            run(collect(provider, request()))
        message = str(info.value)
        assert info.value.kind == "auth" and info.value.status == 401
        env = "OPENAI_API_KEY" if kind == "openai" else "ANTHROPIC_API_KEY"
        url = server.base_url if kind == "openai" else server.root_url
        assert message.startswith(f"authentication failed for provider {kind} at {url}: check {env}")
        assert "\n" not in message
        assert len(server.requests) == 1  # never retried


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_port_names_the_url(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = create_provider(kind, base_url=url + ("/v1" if kind == "openai" else ""), backoff_base=0.01)
    with pytest.raises(ProviderError) as info:
        run(collect(provider, request()))
    assert info.value.kind == "unreachable"
    assert url in str(info.value) and "connection refused" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_model_is_model_not_found(kind: str) -> None:
    with ScriptedModelServer(models=["test-model"], strict_models=True) as server:
        with pytest.raises(ProviderError) as info:
            run(collect(make(kind, server), request(model="no-such-model")))
        assert info.value.kind == "model_not_found" and info.value.status == 404
        assert "'no-such-model'" in str(info.value)


def test_bad_request_is_not_retried(server: ScriptedModelServer) -> None:
    server.script(Reply.error(400, "bad tools"))
    with pytest.raises(ProviderError) as info:
        run(collect(make("openai", server), request()))
    assert info.value.kind == "bad_request" and "bad tools" in str(info.value)
    assert len(server.requests) == 1


def test_timeout_is_reported(server: ScriptedModelServer) -> None:
    server.script(Reply.text("late", delay=5))
    provider = make("openai", server, timeout=0.3, max_retries=0)
    with pytest.raises(ProviderError) as info:
        run(collect(provider, request()))
    assert info.value.kind == "server" and "timed out" in str(info.value)
    assert server.wait_for(lambda s: s.disconnects >= 1, timeout=5)


@pytest.mark.parametrize("kind", KINDS)
def test_connection_dropped_mid_stream(kind: str, server: ScriptedModelServer) -> None:
    server.script(Reply.text("a" * 50, chunk_size=1, disconnect_after=5))
    seen: list[ProviderEvent] = []

    async def consume() -> None:
        provider = make(kind, server)
        try:
            async for event in provider.stream(request()):
                seen.append(event)
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as info:
        run(consume())
    assert info.value.kind in ("unreachable", "server")
    assert "mid-stream" in str(info.value)
    assert "complete" not in kinds_of(seen)


# -------------------------------------------------------------------------------- cancellation


@pytest.mark.parametrize("kind", KINDS)
def test_cancellation_mid_stream_closes_the_connection(kind: str, server: ScriptedModelServer) -> None:
    total = 400
    server.script(Reply.text("z" * total, chunk_size=1, chunk_delay=0.02))
    got_first = asyncio.Event
    received: list[str] = []

    async def main() -> None:
        first = got_first()
        provider = make(kind, server)

        async def consume() -> None:
            async for event in provider.stream(request()):
                if event.kind == "text_delta":
                    received.append(event.text)
                    first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await provider.aclose()

    run(main())
    assert 0 < len(received) < total
    assert server.wait_for(lambda s: s.disconnects >= 1, timeout=5), "server did not notice the disconnect"
    assert server.chunks_sent < total


# ---------------------------------------------------------------------------------- list models


@pytest.mark.parametrize("kind", KINDS)
def test_list_models(kind: str) -> None:
    with ScriptedModelServer(models=["alpha", "beta"]) as server:
        provider = make(kind, server)

        async def go():
            try:
                return await provider.list_models()
            finally:
                await provider.aclose()

        models = run(go())
        assert [(m.id, m.provider) for m in models] == [("alpha", kind), ("beta", kind)]
        assert server.received[-1].path == "/v1/models"


def test_list_models_auth_error() -> None:
    with ScriptedModelServer(api_key="k") as server:
        provider = make("openai", server, api_key="nope")

        async def go():
            try:
                return await provider.list_models()
            finally:
                await provider.aclose()

        with pytest.raises(ProviderError) as info:
            run(go())
        assert info.value.kind == "auth"


def test_provider_is_reusable_across_event_loops(server: ScriptedModelServer) -> None:
    provider = make("openai", server)
    server.script("one", "two")

    async def once() -> str:
        try:
            return "".join([e.text async for e in provider.stream(request()) if e.kind == "text_delta"])
        finally:
            await provider.aclose()  # the SDK client is re-created on the next use

    assert run(once()) == "one"
    assert run(once()) == "two"


# ------------------------------------------------------------------------------------ registry


def test_registry_kinds_and_default_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    expected = {
        "openai": "https://api.openai.com/v1",
        "ollama": "http://localhost:11434/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "groq": "https://api.groq.com/openai/v1",
        "lmstudio": "http://localhost:1234/v1",
        "llamacpp": "http://localhost:8080/v1",
    }
    for kind, url in expected.items():
        provider = create_provider(kind, api_key="k")  # a hosted endpoint without a key is refused (below)
        assert isinstance(provider, Provider)
        assert provider.name == kind and provider.base_url == url  # type: ignore[attr-defined]
    assert {"openai-compatible", "vllm", "anthropic"} <= set(provider_kinds())
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        create_provider("openai")
    assert create_provider("ollama").base_url == "http://localhost:11434/v1"  # a local server needs no key
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    assert create_provider("openai").base_url == "http://env.example/v1"  # type: ignore[attr-defined]
    assert create_provider("ollama").base_url == "http://localhost:11434/v1"  # type: ignore[attr-defined]
    custom = create_provider("openai-compatible", name="work", baseUrl="http://x/v1", headers={"A": "b"})
    assert custom.name == "work" and custom.base_url == "http://x/v1"  # type: ignore[attr-defined]
    assert create_provider("anthropic", base_url="http://h:1/v1").base_url == "http://h:1"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown provider kind"):
        create_provider("nope")
    with pytest.raises(ValueError, match="unknown option"):
        create_provider("openai", colour="blue")


def test_register_provider_kind() -> None:
    class Dummy:
        def __init__(self, **options: Any) -> None:
            self.name = options.get("name", "dummy")
            self.options = options

    register_provider_kind("dummy", Dummy)  # type: ignore[arg-type]
    try:
        provider = create_provider("dummy", name="d", answer=42)
        assert provider.options == {"name": "d", "answer": 42}  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            register_provider_kind("dummy", Dummy, replace=False)  # type: ignore[arg-type]
    finally:
        unregister_provider_kind("dummy")
    assert "dummy" not in provider_kinds()


def test_parse_model_ref() -> None:
    assert parse_model_ref("gpt-4o") == (None, "gpt-4o")
    assert parse_model_ref("openai/gpt-4o") == ("openai", "gpt-4o")
    assert parse_model_ref("openrouter/meta-llama/llama-3") == ("openrouter", "meta-llama/llama-3")
    assert parse_model_ref("meta-llama/llama-3", known_providers={"openai"}) == (None, "meta-llama/llama-3")
    assert parse_model_ref(" ollama/qwen3:8b ") == ("ollama", "qwen3:8b")
    with pytest.raises(ValueError):
        parse_model_ref("  ")


def test_retry_helpers() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=0.2)
    assert 1 <= policy.delay(1) <= 1.2 and 2 <= policy.delay(2) <= 2.4
    assert policy.delay(10) == 5 and policy.delay(1, retry_after=100) == 5 and policy.delay(3, 0) == 0


def test_importing_registry_does_not_import_sdks() -> None:
    code = (
        "import sys, pando_core.agent.providers.registry, pando_core.testing.model_server;"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


def test_error_text_is_shortened_to_one_line():
    from pando_core.errors import one_line

    assert one_line("a \n b\t c") == "a b c"
    assert one_line("x" * 150) == "x" * 99 + "…"
    assert one_line("y" * 400, 300) == "y" * 299 + "…"
