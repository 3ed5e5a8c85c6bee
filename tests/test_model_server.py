"""ScriptedModelServer over real loopback HTTP (stdlib clients only)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pando_core.testing.model_server import Reply, ScriptedModelServer, last_user_text


def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) pairs from an SSE body."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def server():
    with ScriptedModelServer() as srv:
        yield srv


def test_non_streaming_text_and_default_echo(server: ScriptedModelServer) -> None:
    server.script(Reply.text("hello there"))
    status, _, body = post(server.base_url + "/chat/completions", chat("hi"))
    assert status == 200
    data = json.loads(body)
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == "hello there"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0

    status, _, body = post(server.base_url + "/chat/completions", chat("say this back"))
    assert json.loads(body)["choices"][0]["message"]["content"] == "echo: say this back"
    assert [r["messages"][0]["content"] for r in server.requests] == ["hi", "say this back"]


def test_openai_stream_chunks_tool_call_fragments_and_usage(server: ScriptedModelServer) -> None:
    server.script(
        Reply.tool(
            "write",
            {"file_path": "a.txt", "content": "xyz"},
            id="call_1",
            text="ok",
            reasoning="think",
            chunk_size=5,
            usage={"prompt_tokens": 50, "completion_tokens": 7, "cached_tokens": 20},
        )
    )
    status, headers, raw = post(
        server.base_url + "/chat/completions", chat("go", stream=True, stream_options={"include_usage": True})
    )
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(raw)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "think"
    assert "".join(d.get("content") or "" for d in deltas) == "ok"
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert tool_deltas[0]["id"] == "call_1" and tool_deltas[0]["function"]["name"] == "write"
    assert all("id" not in t and t["index"] == 0 for t in tool_deltas[1:])
    assert len(tool_deltas) > 3  # arguments arrive in fragments
    arguments = "".join(t["function"]["arguments"] for t in tool_deltas)
    assert json.loads(arguments) == {"file_path": "a.txt", "content": "xyz"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 50
    assert usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"] == 20


def test_stream_without_include_usage_has_no_usage_chunk(server: ScriptedModelServer) -> None:
    server.script(Reply(text="abc", finish_reason="length"))
    _, _, raw = post(server.base_url + "/chat/completions", chat("x", stream=True))
    chunks = [json.loads(d) for _, d in sse_events(raw)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_anthropic_stream_event_sequence(server: ScriptedModelServer) -> None:
    server.script(Reply.tool("ls", {"path": "."}, text="hi", reasoning="hmm", chunk_size=4))
    body = {
        "model": "test-model",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    status, _, raw = post(server.root_url + "/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert status == 200
    events = sse_events(raw)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    payloads = [json.loads(d) for _, d in events]
    assert all(p["type"] == n for p, n in zip(payloads, names, strict=True))
    starts = [p["content_block"]["type"] for p in payloads if p["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    delta_types = {p["delta"]["type"] for p in payloads if p["type"] == "content_block_delta"}
    assert delta_types == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    partial = "".join(
        p["delta"]["partial_json"] for p in payloads if p.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(partial) == {"path": "."}
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_non_streaming(server: ScriptedModelServer) -> None:
    server.script(
        Reply.tool("view", '{"file_path": "x"}', text="t", usage={"prompt_tokens": 10, "cached_tokens": 4})
    )
    body = {"model": "test-model", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    status, _, raw = post(server.root_url + "/v1/messages", body)
    data = json.loads(raw)
    assert status == 200 and data["type"] == "message" and data["stop_reason"] == "tool_use"
    assert [b["type"] for b in data["content"]] == ["text", "tool_use"]
    assert data["content"][1]["input"] == {"file_path": "x"}
    assert data["usage"]["input_tokens"] == 6 and data["usage"]["cache_read_input_tokens"] == 4


def test_rules_take_precedence_and_are_reusable(server: ScriptedModelServer) -> None:
    server.add_rule(contains="ping", response=Reply.text("pong"))
    server.script("queued")
    answers = []
    for text in ("ping 1", "other", "ping 2", "last"):
        _, _, raw = post(server.base_url + "/chat/completions", chat(text))
        answers.append(json.loads(raw)["choices"][0]["message"]["content"])
    assert answers == ["pong", "queued", "pong", "echo: last"]
    assert server.pending == 0


def test_default_error_when_script_exhausted() -> None:
    with ScriptedModelServer([{"text": "only"}], default="error") as server:
        assert post(server.base_url + "/chat/completions", chat("a"))[0] == 200
        status, _, raw = post(server.base_url + "/chat/completions", chat("b"))
        assert status == 500
        assert json.loads(raw)["error"]["message"] == "script exhausted"


def test_error_replies_have_provider_shapes_and_retry_after(server: ScriptedModelServer) -> None:
    server.script(Reply.error(429, retry_after=3), Reply.error(529, "busy"))
    status, headers, raw = post(server.base_url + "/chat/completions", chat("a"))
    assert status == 429 and headers["Retry-After"] == "3"
    assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
    status, _, raw = post(server.root_url + "/v1/messages", {"model": "m", "max_tokens": 5, "messages": []})
    assert status == 529
    assert json.loads(raw) == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}


def test_api_key_and_strict_models() -> None:
    with ScriptedModelServer(api_key="k", models=["a", "b"], strict_models=True) as server:
        url = server.base_url + "/chat/completions"
        assert post(url, chat("x"))[0] == 401
        assert post(url, chat("x"), {"Authorization": "Bearer wrong"})[0] == 401
        status, _, raw = post(url, {**chat("x"), "model": "nope"}, {"Authorization": "Bearer k"})
        assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"
        assert post(url, {**chat("x"), "model": "a"}, {"Authorization": "Bearer k"})[0] == 200
        anthropic_body = {"model": "b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        assert post(server.root_url + "/v1/messages", anthropic_body, {"x-api-key": "k"})[0] == 200
        status, raw = get(server.base_url + "/models", {"Authorization": "Bearer k"})
        assert status == 200 and [m["id"] for m in json.loads(raw)["data"]] == ["a", "b"]
        status, raw = get(server.base_url + "/models", {"x-api-key": "k", "anthropic-version": "2023-06-01"})
        data = json.loads(raw)
        assert data["has_more"] is False and data["data"][0]["type"] == "model"


def test_last_user_text_skips_tool_results() -> None:
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "question"}]},
            {"role": "assistant", "content": "calling"},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "res"}]},
        ]
    }
    assert last_user_text(body) == "question"


def test_concurrent_requests_are_all_recorded(server: ScriptedModelServer) -> None:
    server.script(*[Reply.text(f"r{i}", delay=0.05) for i in range(8)])
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        _, _, raw = post(server.base_url + "/chat/completions", chat(f"q{i}"))
        with lock:
            results.append(json.loads(raw)["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results) == sorted(f"r{i}" for i in range(8))
    assert len(server.requests) == 8


def test_client_disconnect_mid_stream_is_detected_and_stop_does_not_hang() -> None:
    server = ScriptedModelServer([Reply.text("x" * 400, chunk_size=1, chunk_delay=0.05)]).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", json.dumps(chat("x", stream=True)))
        response = conn.getresponse()
        assert response.status == 200
        assert response.fp.readline()  # the first chunk arrived
        conn.close()
        response.close()
        assert server.wait_for(lambda s: s.disconnects >= 1, timeout=5)
        assert server.chunks_sent < 50
        # a second stream still in flight must not block stop()
        server.script(Reply.text("y" * 400, chunk_size=1, chunk_delay=0.5))
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        body = json.dumps(chat("y", stream=True)).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        sock.close()
    finally:
        server.stop()


def test_cli_mode_with_port_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"responses": [{"text": "from script"}], "rules": [], "default": "echo"}))
    port_file = tmp_path / "url.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pando_core.testing.model_server",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        try:
            deadline = time.monotonic() + 15
            while not port_file.exists():
                assert proc.poll() is None, "model server exited early"
                assert time.monotonic() < deadline, "model server did not write its port file"
                time.sleep(0.02)
            base_url = port_file.read_text().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            status, _, raw = post(base_url + "/chat/completions", chat("hello"))
            assert status == 200
            assert json.loads(raw)["choices"][0]["message"]["content"] == "from script"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err.decode()
            assert out.decode().strip() == base_url
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=5)
