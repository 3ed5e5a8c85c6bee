"""``pando acp`` on the raw wire: malformed frames, stdout purity, a client that goes away mid-turn."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

from pando_acp.testing import stored_messages

from pando_core.testing.model_server import Reply

DEADLINE_S = 30.0


class RawAgent:
    """A ``pando acp`` process spoken to frame by frame; every stdout line is kept."""

    def __init__(self, workdir, env, *args: str) -> None:  # noqa: ANN001
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pando_core", *args, "acp"],
            cwd=workdir,
            env=dict(env, PANDO_PLUGINS="acp", PANDO_STRICT_PLUGINS="1"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[bytes] = []
        self._frames: queue.Queue = queue.Queue()
        self.stderr = b""
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._next_id = 100

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self._frames.put(line)

    def _read_stderr(self) -> None:
        self.stderr = self.process.stderr.read()

    def send_raw(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(self, method: str, params: dict) -> int:
        self._next_id += 1
        self.send_raw(json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}).encode() + b"\n")
        return self._next_id

    def frame(self, predicate=lambda f: True) -> dict:  # noqa: ANN001
        """The next frame that satisfies ``predicate`` (others are skipped), within the deadline."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no such frame came")
            try:
                frame = json.loads(self._frames.get(timeout=remaining))
            except queue.Empty:
                raise AssertionError("no such frame came") from None
            if predicate(frame):
                return frame

    def reply_to(self, request_id: int) -> dict:
        return self.frame(lambda f: f.get("id") == request_id and "method" not in f)

    def close(self) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=DEADLINE_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _initialize(agent: RawAgent, workdir) -> str:  # noqa: ANN001
    agent.reply_to(agent.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}}))
    reply = agent.reply_to(agent.request("session/new", {"cwd": str(workdir), "mcpServers": []}))
    return reply["result"]["sessionId"]


def test_malformed_frames_get_json_rpc_errors_and_the_agent_goes_on(acp_workdir, pando_env):
    agent = RawAgent(acp_workdir, pando_env)
    try:
        agent.send_raw(b"this is not json\n")
        parse_error = agent.frame()
        agent.send_raw(b"[1, 2]\n")
        batch_error = agent.frame()
        agent.send_raw(b'{"jsonrpc": "2.0", "params": {}}\n')
        empty_error = agent.frame()
        unknown = agent.reply_to(agent.request("session/frobnicate", {}))
        bad_params = agent.reply_to(agent.request("session/prompt", {"sessionId": 3}))
        init = agent.reply_to(agent.request("initialize", {"protocolVersion": 1}))
    finally:
        code = agent.close()
    assert parse_error["id"] is None and parse_error["error"]["code"] == -32700
    assert "not JSON" in parse_error["error"]["message"]
    assert batch_error["error"]["code"] == -32600 and "batches" in batch_error["error"]["message"]
    assert empty_error["error"]["code"] == -32600
    assert unknown["error"]["code"] == -32601
    assert bad_params["error"]["code"] == -32602
    assert init["result"]["agentInfo"]["name"] == "pando"
    assert code == 0


def test_nothing_but_frames_on_stdout(acp_workdir, pando_env, model_server):
    """With debug logging on and a tool call that prints, stdout still holds only JSON-RPC frames."""
    with open(acp_workdir / ".pando.toml", "a", encoding="utf-8") as config:
        config.write('\n[permissions]\nallow_bash = ["echo *"]\n')
    model_server.script(Reply.tool("bash", {"command": "echo printed-by-a-tool"}), Reply.text("it printed"))
    agent = RawAgent(acp_workdir, pando_env, "--debug")
    try:
        session_id = _initialize(agent, acp_workdir)
        prompt = agent.request("session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "echo"}]})
        result = agent.reply_to(prompt)
    finally:
        code = agent.close()
    assert result["result"]["stopReason"] == "end_turn"
    assert code == 0
    assert agent.lines, "no frames at all"
    for line in agent.lines:
        frame = json.loads(line)
        assert frame["jsonrpc"] == "2.0"
    assert b"DEBUG" in agent.stderr  # the logs went to stderr
    tool_output = [json.loads(line) for line in agent.lines if b"printed-by-a-tool" in line]
    assert tool_output and all(f["method"] == "session/update" for f in tool_output if "method" in f)
    assert (acp_workdir / ".pando" / "logs" / "acp.log").is_file()


def test_a_client_that_disconnects_mid_turn_cancels_it_and_the_turn_is_stored(acp_workdir, pando_env, model_server):
    model_server.script(Reply.text("chunk " * 300, chunk_size=6, chunk_delay=0.05))
    agent = RawAgent(acp_workdir, pando_env)
    session_id = _initialize(agent, acp_workdir)
    agent.request("session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "a long one"}]})
    for _ in range(3):
        agent.frame(lambda f: f.get("params", {}).get("update", {}).get("sessionUpdate") == "agent_message_chunk")
    started = time.monotonic()
    code = agent.close()  # the editor closes the pipe in the middle of the answer
    assert code == 0
    assert time.monotonic() - started < 10  # not after the 15 s the whole answer takes
    messages = stored_messages(acp_workdir, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    parts = {p["type"]: p["data"] for p in messages[1]["parts"]}
    assert parts["finish"]["reason"] == "canceled"
    assert parts["text"]["text"].startswith("chunk chunk") and len(parts["text"]["text"]) < len("chunk " * 300)


def test_no_model_configured_is_a_one_line_error(pando_workdir, pando_env):
    agent = RawAgent(pando_workdir, pando_env)
    try:
        session_id = _initialize(agent, pando_workdir)
        reply = agent.reply_to(agent.request("session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "hi"}]}))
        outside = agent.reply_to(agent.request("session/new", {"cwd": "/", "mcpServers": []}))
    finally:
        code = agent.close()
    message = reply["error"]["message"]
    assert "no model is configured" in message and "\n" not in message
    assert outside["error"]["code"] == -32602 and f"pando acp serves {pando_workdir.resolve()}" in outside["error"]["message"]
    assert code == 0
