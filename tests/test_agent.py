"""The coding agent end to end: the real CLI or App against the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from pando_core import hookimpl
from pando_core.agent.tools.base import ToolResult
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.primary import primary_holder


def run_cli(workdir, env, *args, input=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, input=input,
    )


def messages_of(workdir, session_id):
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT role, parts FROM messages WHERE session_id=? ORDER BY seq", (session_id,)).fetchall()
    finally:
        db.close()
    return [(role, json.loads(parts)) for role, parts in rows]


def tool_results(request_body):
    return [m for m in request_body["messages"] if m["role"] == "tool"]


@pytest.mark.slow
def test_run_writes_a_file_through_a_tool_and_answers(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.tool("write", {"file_path": "hello.txt", "content": "hi\n"}), Reply.text("Wrote hello.txt."))
    result = run_cli(pando_workdir, pando_env, "run", "--yolo", "-f", "json", "create hello.txt")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"session_id", "response", "model", "tokens_in", "tokens_out", "cost", "tool_calls", "status"}
    assert data["status"] == "success"
    assert data["response"] == "Wrote hello.txt."
    assert data["model"] == "scripted/test-model"
    assert [c["name"] for c in data["tool_calls"]] == ["write"]
    assert data["tokens_in"] > 0 and data["tokens_out"] > 0
    assert (pando_workdir / "hello.txt").read_text() == "hi\n"
    roles = [role for role, _ in messages_of(pando_workdir, data["session_id"])]
    assert roles == ["user", "assistant", "tool", "assistant"]
    # snapshots of the working tree were taken when the session started and ended, and around the
    # turn that changed a file (its checkpoint)
    snapshots = json.loads(run_cli(pando_workdir, pando_env, "snapshots", "list", "--json", "--session", data["session_id"]).stdout)
    labels = sorted(s["label"] for s in snapshots)
    assert labels == ["checkpoint after", "checkpoint before", "session end", "session start"]
    # the second request carried the tool result back to the model
    assert "hello.txt" in tool_results(model_server.requests[1])[0]["content"]


@pytest.mark.slow
def test_text_and_stream_json_formats(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.text("plain answer"))
    text = run_cli(pando_workdir, pando_env, "run", "say something")
    assert text.returncode == 0, text.stderr
    assert text.stdout == "plain answer\n"
    model_server.script(Reply.tool("ls", {}), Reply.text("listed", chunk_size=2))
    stream = run_cli(pando_workdir, pando_env, "run", "-f", "stream-json", "list files")
    assert stream.returncode == 0, stream.stderr
    events = [json.loads(line) for line in stream.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "tool_call" and "tool_result" in kinds and kinds[-1] == "result"
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "listed"
    assert events[-1]["status"] == "success" and events[-1]["response"] == "listed"


@pytest.mark.slow
def test_prompt_from_stdin_and_dash_p(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    piped = run_cli(pando_workdir, pando_env, "run", "-", input="from stdin\n")
    assert piped.returncode == 0 and piped.stdout.strip() == "echo: from stdin"
    flag = run_cli(pando_workdir, pando_env, "-p", "from flag", "-f", "json")
    assert flag.returncode == 0, flag.stderr
    assert json.loads(flag.stdout)["response"] == "echo: from flag"


@pytest.mark.slow
def test_output_format_is_case_insensitive_and_checked_before_the_app_starts(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    bad = run_cli(pando_workdir, pando_env, "run", "-f", "xml", "hi")
    assert bad.returncode == 2 and "--output-format must be one of" in bad.stderr
    assert not (pando_workdir / ".pando").exists()  # refused before the runtime started
    model_server.script(Reply.text("upper"))
    upper = run_cli(pando_workdir, pando_env, "run", "-f", "JSON", "hi")
    assert upper.returncode == 0, upper.stderr
    assert json.loads(upper.stdout)["response"] == "upper"


@pytest.mark.slow
def test_edit_with_a_non_unique_match_goes_back_to_the_model(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    (pando_workdir / "a.py").write_text("x = 1\nx = 1\n")
    model_server.script(
        Reply.tool("view", {"file_path": "a.py"}),
        Reply.tool("edit", {"file_path": "a.py", "old_string": "x = 1", "new_string": "x = 2"}),
        Reply.text("The match was not unique."),
    )
    result = run_cli(pando_workdir, pando_env, "run", "--yolo", "-f", "json", "change x")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tool_calls"][1]["is_error"] is True
    error_text = tool_results(model_server.requests[2])[-1]["content"]
    assert "2" in error_text and ("matches" in error_text or "occurrences" in error_text or "unique" in error_text)
    assert (pando_workdir / "a.py").read_text() == "x = 1\nx = 1\n"


@pytest.mark.slow
def test_bash_timeout(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.tool("bash", {"command": "sleep 20", "timeout": 300}), Reply.text("it timed out"))
    started = time.monotonic()
    result = run_cli(pando_workdir, pando_env, "run", "--yolo", "-f", "json", "sleep")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    content = tool_results(model_server.requests[1])[-1]["content"]
    assert "aborted" in content.lower()


@pytest.mark.slow
def test_denied_tool_in_a_non_interactive_run(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(
        Reply.tools({"name": "write", "arguments": {"file_path": "x.txt", "content": "x"}}, {"name": "bash", "arguments": {"command": "touch y.txt"}}),
    )
    result = run_cli(pando_workdir, pando_env, "run", "-f", "json", "write x")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied"
    assert data["denials"][0]["tool"] == "write"
    assert not (pando_workdir / "x.txt").exists() and not (pando_workdir / "y.txt").exists()
    assert len(model_server.requests) == 1  # the turn ended; the remaining call was not run
    model_server.script(Reply.tool("write", {"file_path": "x.txt", "content": "x"}))
    text = run_cli(pando_workdir, pando_env, "run", "write x")
    assert "permission denied" in text.stderr and "--yolo" in text.stderr
    # an allow-list in config lets it through
    (pando_workdir / ".pando.toml").write_text((pando_workdir / ".pando.toml").read_text() + '\n[permissions]\nallow_tools = ["write"]\n')
    model_server.script(Reply.tool("write", {"file_path": "x.txt", "content": "x"}), Reply.text("ok"))
    allowed = run_cli(pando_workdir, pando_env, "run", "-f", "json", "write x")
    assert allowed.returncode == 0 and (pando_workdir / "x.txt").exists()


@pytest.mark.slow
def test_cancellation_mid_stream_keeps_the_session_consistent(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.text("word " * 400, chunk_size=5, chunk_delay=0.02))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pando_core", "--plugins", "none", "run", "-f", "stream-json", "talk a lot"],
        cwd=pando_workdir, env=pando_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()  # streaming has started
        assert json.loads(first)["type"] == "text_delta"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    final = json.loads(out.splitlines()[-1])
    assert final["status"] == "cancelled"
    messages = messages_of(pando_workdir, final["session_id"])
    assert [role for role, _ in messages] == ["user", "assistant"]
    parts = messages[1][1]
    finish = [p for p in parts if p["type"] == "finish"][0]
    assert finish["data"]["reason"] == "canceled"
    assert [p for p in parts if p["type"] == "text"][0]["data"]["text"].startswith("word")
    # the session is loadable and can continue
    model_server.script(Reply.text("continued"))
    again = run_cli(pando_workdir, pando_env, "run", "--session", final["session_id"], "-f", "json", "go on")
    assert again.returncode == 0 and json.loads(again.stdout)["response"] == "continued"


@pytest.mark.slow
def test_compaction_with_a_small_window(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url, extra="")
    config = pando_workdir / ".pando.toml"
    config.write_text(config.read_text().replace('[agent]\n', '[agent]\ncontext_window = 4000\ncompact_threshold = 0.5\n'))
    model_server.script(
        Reply.tool("ls", {}),
        Reply.tool("ls", {}, usage={"prompt_tokens": 3000, "completion_tokens": 10}),
        Reply.text("Objective: list files. Current state: listed."),  # the summary request
        Reply.text("done after compaction"),
    )
    result = run_cli(pando_workdir, pando_env, "run", "-f", "json", "list the files")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["response"] == "done after compaction"
    summary_request = model_server.requests[2]
    assert summary_request.get("tools") in (None, [])
    db = sqlite3.connect(f"file:{pando_workdir}/.pando/pando.db?mode=ro", uri=True)
    summary_id = db.execute("SELECT summary_message_id FROM sessions WHERE id=?", (data["session_id"],)).fetchone()[0]
    assert summary_id
    # the request after compaction starts from the summary
    last = model_server.requests[3]["messages"]
    assert "Summary of the earlier conversation" in json.dumps(last[1])


@pytest.mark.slow
def test_rate_limit_then_success(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.error(429, retry_after=0), Reply.text("after retry"))
    result = run_cli(pando_workdir, pando_env, "run", "-f", "json", "hi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["response"] == "after retry"


@pytest.mark.slow
def test_provider_errors_are_one_line(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.error(401))
    result = run_cli(pando_workdir, pando_env, "run", "hi")
    assert result.returncode == 1
    assert "auth" in result.stderr.lower() and "Traceback" not in result.stderr
    (pando_workdir / ".pando.toml").unlink()
    unconfigured = run_cli(pando_workdir, pando_env, "run", "hi")
    assert unconfigured.returncode == 2
    assert "no model is configured" in unconfigured.stderr and "OPENAI_API_KEY" in unconfigured.stderr


@pytest.mark.slow
def test_run_from_a_secondary_lands_through_the_primary(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    with primary_holder(pando_workdir, pando_env) as holder:
        assert holder.role == "primary"
        model_server.script(Reply.tool("write", {"file_path": "s.txt", "content": "from secondary"}), Reply.text("done"))
        result = run_cli(pando_workdir, pando_env, "run", "--yolo", "-f", "json", "write s.txt")
        assert result.returncode == 0, result.stderr
        session_id = json.loads(result.stdout)["session_id"]
        db = sqlite3.connect(f"file:{pando_workdir}/.pando/pando.db?mode=ro", uri=True)
        proxied = db.execute("SELECT COUNT(*), COUNT(DISTINCT instance_id) FROM applied_writes").fetchone()
        assert proxied[0] >= 5 and proxied[1] == 1  # the run's writes went through the primary's coordinator
        # applied_writes names the instance that asked for the writes: the secondary, not the holder
        (writer,) = db.execute("SELECT DISTINCT instance_id FROM applied_writes").fetchone()
        assert writer != holder.instance_id
        assert [r for r, _ in messages_of(pando_workdir, session_id)] == ["user", "assistant", "tool", "assistant"]
        assert db.execute("SELECT COUNT(*) FROM files WHERE session_id=?", (session_id,)).fetchone()[0] == 2


class RewritingPlugin:
    """A plugin tool plus a before-tool hook that rewrites its arguments."""

    class Shout:
        name = "shout"
        description = "Shout a word."
        parameters = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}
        read_only = True

        async def run(self, args, ctx):
            return ToolResult(args["word"].upper() + "!")

    @hookimpl
    def pando_register_tools(self, app):
        return [self.Shout()]

    @hookimpl
    def pando_before_tool_call(self, tool_name, arguments):
        if tool_name == "shout":
            return {"word": arguments["word"] + " rewritten"}
        return None

    @hookimpl
    def pando_after_tool_call(self, tool_name, result):
        if tool_name == "shout":
            return ToolResult(result.content + " (checked)")
        return None


def test_plugin_tool_and_before_tool_hook(model_server, make_app):
    app = make_app(extra_plugins={"rewriter": RewritingPlugin()}, model_server=model_server)
    model_server.script(Reply.tool("shout", {"word": "hey"}), Reply.text("shouted"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "shout hey"))
    assert result.status == "success", result.error
    sent = tool_results(model_server.requests[1])[0]["content"]
    assert sent == "HEY REWRITTEN! (checked)"
    assert json.loads(result.tool_calls[0]["input"]) == {"word": "hey"}


class RefusingPlugin:
    @hookimpl
    def pando_filter_system_prompt(self, prompt):
        from pando_core.agent.tools.base import ToolError

        raise ToolError("policy: no system prompt today")


def test_a_plugin_hook_that_raises_ends_the_turn_cleanly(model_server, make_app):
    app = make_app(extra_plugins={"refuser": RefusingPlugin()}, model_server=model_server)
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "hello"))
    assert result.status == "error"
    assert result.error == "policy: no system prompt today"
    assert model_server.requests == []
    # the user's message was stored; the session stays usable
    assert [m["role"] for m in app.messages.list(session["id"])] == ["user"]


@pytest.mark.slow
def test_models_and_init_commands(model_server, pando_workdir, pando_env):
    extra = '\n[providers.keyless]\ntype = "openai"\nbase_url = "http://127.0.0.1:9"\napi_key_env = "PANDO_TEST_UNSET_KEY"\n'
    write_model_config(pando_workdir, model_server.base_url, extra=extra)
    listed = run_cli(pando_workdir, pando_env, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == ["test-model"]
    named = run_cli(pando_workdir, pando_env, "models", "scripted")  # a provider, without a model
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["scripted/test-model"]
    keyless = run_cli(pando_workdir, {k: v for k, v in pando_env.items() if k != "PANDO_TEST_UNSET_KEY"}, "models", "keyless")
    assert keyless.returncode == 2 and "PANDO_TEST_UNSET_KEY is not set" in keyless.stderr
    unknown = run_cli(pando_workdir, pando_env, "models", "nope")
    assert unknown.returncode == 2 and "unknown provider 'nope'" in unknown.stderr
    fresh = pando_workdir / "fresh"
    fresh.mkdir()
    made = run_cli(fresh, pando_env, "init", "--provider", "ollama", "--model", "qwen2.5-coder", "--yes")
    assert made.returncode == 0, made.stderr
    text = (fresh / ".pando.toml").read_text()
    assert 'model = "ollama/qwen2.5-coder"' in text and 'base_url = "http://localhost:11434/v1"' in text
    again = run_cli(fresh, pando_env, "init", "--provider", "openai", "--yes")
    assert again.returncode == 2 and "--force" in again.stderr
    no_tty = run_cli(pando_workdir / "fresh", pando_env, "init", "--force")
    assert no_tty.returncode == 2 and "--provider" in no_tty.stderr
    shown = run_cli(fresh, pando_env, "config", "show", "--json")
    assert json.loads(shown.stdout)["config"]["agent"]["model"] == "ollama/qwen2.5-coder"


class EchoProviderPlugin:
    """A plugin-provided provider kind: answers with the reversed prompt, reports usage."""

    @hookimpl
    def pando_register_providers(self):
        from pando_core.agent.providers.base import ModelInfo, ProviderEvent, Usage

        class Reverser:
            name = "reverser"

            async def stream(self, request):
                text = request.messages[-1]["parts"][0]["data"]["text"][::-1]
                yield ProviderEvent("text_delta", text=text)
                yield ProviderEvent("complete", finish_reason="end_turn", usage=Usage(input_tokens=1000, output_tokens=500))

            async def list_models(self):
                return [ModelInfo("r1", "reverser")]

            async def aclose(self):
                return None

        return {"reverser": lambda **options: Reverser()}


def test_a_plugin_provider_and_cost_accounting(make_app):
    config = (
        '[agent]\nmodel = "rev/r1"\n[providers.rev]\ntype = "reverser"\n'
        "[providers.rev.models.r1]\ninput_price = 2.0\noutput_price = 10.0\n"
    )
    app = make_app(extra_plugins={"reverser": EchoProviderPlugin()}, config=config)
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "abc"))
    assert result.status == "success", result.error
    assert result.response == "cba"
    assert abs(result.cost - (1000 * 2.0 + 500 * 10.0) / 1_000_000) < 1e-12
    stored = app.sessions.get(session["id"])
    assert stored["total_prompt_tokens"] == 1000 and stored["total_completion_tokens"] == 500
    assert abs(stored["cost"] - result.cost) < 1e-12
    second = asyncio.run(app.coder_agent.run(session["id"], "xy"))
    assert app.sessions.get(session["id"])["total_prompt_tokens"] == 2000
    assert abs(app.sessions.get(session["id"])["cost"] - 2 * second.cost) < 1e-12


def test_interrupted_tool_calls_are_answered_before_the_next_request():
    from pando_core.agent.request_history import sanitize_history
    from pando_core.agent.turn_records import INTERRUPTED_TOOL

    call = {"type": "tool_call", "data": {"id": "c1", "name": "bash", "input": "{}"}}
    history = [
        {"role": "user", "parts": [{"type": "text", "data": {"text": "go"}}]},
        {"role": "assistant", "parts": [call]},  # the process died while the tool ran
        {"role": "user", "parts": [{"type": "text", "data": {"text": "again"}}]},
        {"role": "assistant", "parts": []},  # an empty draft left by a crash
    ]
    repaired = sanitize_history(history)
    assert [m["role"] for m in repaired] == ["user", "assistant", "tool", "user"]
    assert repaired[2]["parts"][0]["data"] == {
        "tool_call_id": "c1", "name": "bash", "content": INTERRUPTED_TOOL, "is_error": True
    }

    # two calls, one answered before the crash: the other is answered in a copy of the tool message
    calls = [{"type": "tool_call", "data": {"id": c, "name": "view", "input": "{}"}} for c in ("c2", "c3")]
    done = {"type": "tool_result", "data": {"tool_call_id": "c2", "name": "view", "content": "ok", "is_error": False}}
    tool_message = {"role": "tool", "parts": [done]}
    partial = [history[0], {"role": "assistant", "parts": calls}, tool_message]
    repaired = sanitize_history(partial)
    assert [m["role"] for m in repaired] == ["user", "assistant", "tool"]
    assert [p["data"]["tool_call_id"] for p in repaired[2]["parts"]] == ["c2", "c3"]
    assert repaired[2]["parts"][1]["data"]["content"] == INTERRUPTED_TOOL
    assert tool_message["parts"] == [done] and partial[2] is tool_message  # the caller's history is unchanged


@pytest.mark.slow
def test_continue_resumes_the_latest_session(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    first = json.loads(run_cli(pando_workdir, pando_env, "run", "-f", "json", "remember 42").stdout)
    second = json.loads(run_cli(pando_workdir, pando_env, "run", "--continue", "-f", "json", "what number?").stdout)
    assert second["session_id"] == first["session_id"]
    sent = model_server.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["remember 42", "what number?"]


@pytest.mark.slow
def test_session_interrupt_from_another_process(model_server, pando_workdir, pando_env):
    """`pando sessions interrupt ID` cancels a turn running in another instance (session.interrupt)."""
    write_model_config(pando_workdir, model_server.base_url)
    with primary_holder(pando_workdir, pando_env) as holder:
        assert holder.role == "primary"
        model_server.script(Reply.text("slow " * 500, chunk_size=5, chunk_delay=0.02))
        runner = subprocess.Popen(
            [sys.executable, "-m", "pando_core", "--plugins", "none", "run", "-f", "stream-json", "talk"],
            cwd=pando_workdir, env=pando_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            session_id = json.loads(runner.stdout.readline())["session_id"]  # streaming has started
            interrupt = run_cli(pando_workdir, pando_env, "sessions", "interrupt", session_id[:8])
            assert interrupt.returncode == 0, interrupt.stderr
            out, err = runner.communicate(timeout=30)
        finally:
            runner.kill()
        assert runner.returncode == 130, err
        assert json.loads(out.splitlines()[-1])["status"] == "cancelled"


def test_sub_agent_tool_runs_a_read_only_task_session(model_server, make_app, pando_workdir):
    (pando_workdir / "notes.md").write_text("the answer is 42\n")
    app = make_app(model_server=model_server)
    model_server.script(
        Reply.tool("agent", {"prompt": "find the answer in notes.md"}, id="task-1"),
        Reply.tool("view", {"file_path": "notes.md"}),  # the sub-agent's first request
        Reply.text("It is 42."),  # the sub-agent's answer
        Reply.text("The sub-agent says 42."),
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "what is the answer?"))
    assert result.response == "The sub-agent says 42."
    sub_tools = {t["function"]["name"] for t in model_server.requests[1]["tools"]}
    assert sub_tools <= {"glob", "grep", "ls", "view", "result_page"} and "view" in sub_tools
    assert tool_results(model_server.requests[3])[0]["content"] == "It is 42."
    task = app.sessions.get("task-1")
    assert task["parent_session_id"] == session["id"]


def test_request_cap_title_model_context_files_and_bash_allow_list(model_server, make_app, pando_workdir):
    (pando_workdir / "AGENTS.md").write_text("Always answer in haiku.\n")
    write_model_config(pando_workdir, model_server.base_url, extra='\n[permissions]\nallow_bash = ["echo *"]\n')
    config = pando_workdir / ".pando.toml"
    config.write_text(config.read_text().replace("[agent]\n", '[agent]\nmax_requests_per_turn = 2\ntitle_model = "scripted/titler"\n'))
    app = make_app()
    model_server.script(Reply.tool("bash", {"command": "echo hi"}), Reply.tool("bash", {"command": "echo again"}))
    model_server.add_rule(model="titler", response=Reply.text("Haiku about echo"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "say hi twice"))
    assert result.status == "max_requests" and result.requests == 2
    assert [c["is_error"] for c in result.tool_calls] == [False, False]  # allowed by the bash pattern
    system = model_server.requests[0]["messages"][0]["content"]
    assert "Always answer in haiku." in system and "AGENTS.md" in system
    title_request = [r for r in model_server.requests if r["model"] == "titler"]
    assert title_request and not title_request[0].get("tools")
    assert app.sessions.get(session["id"])["title"] == "Haiku about echo"


@pytest.mark.slow
def test_options_before_the_subcommand_apply_to_it(model_server, pando_workdir, pando_env):
    """The README's main command: `pando --model provider/model run "..."`."""
    write_model_config(pando_workdir, model_server.base_url)
    result = run_cli(pando_workdir, pando_env, "--model", "scripted/other-model", "-f", "json", "run", "hi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "scripted/other-model"
    assert model_server.requests[-1]["model"] == "other-model"


def test_results_of_not_paged_tools_are_not_paged_through_the_loop(model_server, make_app):
    from pando_core.agent.tools.paging import NOT_PAGED

    app = make_app(model_server=model_server, config='\n[permissions]\nallow_tools = ["write"]\n')
    app.pager.threshold = 10  # every result of these calls is "large"
    model_server.script(
        Reply.tool("write", {"file_path": "big.txt", "content": "x\n" * 50}),
        Reply.tool("ls", {}),
        Reply.text("done"),
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "write and list"))
    assert result.status == "success", result.error
    assert "write" in NOT_PAGED and "ls" not in NOT_PAGED
    written = tool_results(model_server.requests[1])[0]["content"]
    assert len(written) > 10 and written.startswith("File successfully created") and "Output is" not in written
    listed = tool_results(model_server.requests[2])[-1]["content"]
    assert "big.txt" in listed and "Output is" in listed
