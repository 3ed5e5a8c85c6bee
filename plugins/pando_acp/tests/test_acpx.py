"""A third-party ACP client, ``acpx`` (npm, TypeScript SDK), driving ``pando acp``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from pando_acp.testing import stored_messages

from pando_core.testing.model_server import Reply


def run_acpx(acpx, workdir, env, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:  # noqa: ANN001
    agent = f"{sys.executable} -m pando_core acp"
    result = subprocess.run(
        [acpx, "--agent", agent, "--cwd", str(workdir), *args, "--format", "json", "--timeout", "30", "exec", "write the greeting"],
        cwd=workdir,
        env=dict(env, PANDO_PLUGINS="acp", PANDO_STRICT_PLUGINS="1"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    frames = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            frames.append(json.loads(line))
    return result, frames


def _methods(frames: list[dict]) -> list[str]:
    return [f["method"] for f in frames if "method" in f]


def test_acpx_runs_a_turn_with_a_tool_call_it_approves(acpx, acp_workdir, pando_env, model_server):
    model_server.script(
        Reply.tool("write", {"file_path": "greeting.txt", "content": "hello from pando\n"}),
        Reply.text("I wrote greeting.txt."),
    )
    result, frames = run_acpx(acpx, acp_workdir, pando_env, "--approve-all")
    assert result.returncode == 0, result.stderr
    methods = _methods(frames)
    assert methods[:2] == ["initialize", "session/new"]
    assert "session/request_permission" in methods
    # acpx offers the file system: the write went through it (and it saved the file)
    assert "fs/write_text_file" in methods
    assert (acp_workdir / "greeting.txt").read_text() == "hello from pando\n"
    updates = [f["params"]["update"] for f in frames if f.get("method") == "session/update"]
    kinds = [u["sessionUpdate"] for u in updates]
    assert "tool_call" in kinds and "tool_call_update" in kinds
    diff = [c for u in updates if u["sessionUpdate"] == "tool_call" for c in u.get("content") or []]
    assert diff and diff[0]["type"] == "diff" and diff[0]["newText"] == "hello from pando\n"
    text = "".join(u["content"]["text"] for u in updates if u["sessionUpdate"] == "agent_message_chunk")
    assert text == "I wrote greeting.txt."
    stops = [f["result"]["stopReason"] for f in frames if isinstance(f.get("result"), dict) and "stopReason" in f["result"]]
    assert stops == ["end_turn"]


def test_acpx_rejecting_everything_leaves_the_file_alone(acpx, acp_workdir, pando_env, model_server):
    model_server.script(Reply.tool("write", {"file_path": "greeting.txt", "content": "x\n"}), Reply.text("unused"))
    result, frames = run_acpx(acpx, acp_workdir, pando_env, "--deny-all")
    assert "session/request_permission" in _methods(frames)
    assert not (acp_workdir / "greeting.txt").exists()
    assert len(model_server.requests) == 1


def _acpx_session_command(acpx, workdir, *args: str) -> list[str]:  # noqa: ANN001
    return [acpx, "--agent", f"{sys.executable} -m pando_core acp", "--cwd", str(workdir), "--format", "json", "--ttl", "30", *args]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_acpx_persistent_session_model_mode_cancel_and_close(acpx, acp_workdir, pando_env, model_server):
    """acpx's own session flow: ``sessions new`` (session/new), ``set model`` and ``set-mode``
    (session/set_config_option, session/set_mode), each ``prompt`` in a pando acp it starts anew
    (session/load of the stored session, then session/prompt), ``cancel`` from another acpx process
    (session/cancel of the running turn), ``sessions close``."""
    env = dict(pando_env, PANDO_PLUGINS="acp", PANDO_STRICT_PLUGINS="1")

    def acpx_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(_acpx_session_command(acpx, acp_workdir, *args), cwd=acp_workdir, env=env, capture_output=True, text=True, timeout=90)

    model_server.script(Reply.text("the first answer"), Reply.text("word " * 200, chunk_size=5, chunk_delay=0.05))
    owner = None
    try:
        created = acpx_run("sessions", "new")
        assert created.returncode == 0, created.stderr
        session_id = _json_lines(created.stdout)[-1]["acpxSessionId"]

        chosen = acpx_run("set", "model", "scripted/other-model")
        assert chosen.returncode == 0, chosen.stderr
        mode = acpx_run("set-mode", "agent")
        assert mode.returncode == 0 and _json_lines(mode.stdout)[-1]["modeId"] == "agent"
        refused = acpx_run("set-mode", "yolo")  # pando's JSON-RPC error, shown by acpx
        assert refused.returncode != 0
        assert "unknown mode 'yolo'; pando offers ask, agent" in refused.stdout + refused.stderr

        first = acpx_run("prompt", "hello")
        assert first.returncode == 0, first.stderr
        frames = _json_lines(first.stdout)
        methods = [f["method"] for f in frames if "method" in f]
        assert "session/load" in methods and methods[-1] != "session/new"
        assert [f["params"]["sessionId"] for f in frames if f.get("method") == "session/prompt"] == [session_id]
        # the model chosen with acpx set model was stored with the session: the new process uses it
        assert model_server.requests[0]["model"] == "other-model"
        # and so was the mode of acpx set-mode: session/load answers it, acpx does not send it again
        loaded = [f["result"] for f in frames if isinstance(f.get("result"), dict) and "modes" in f["result"]]
        assert [r["modes"]["currentModeId"] for r in loaded] == ["agent"]
        assert "session/set_mode" not in methods

        talking = subprocess.Popen(
            _acpx_session_command(acpx, acp_workdir, "prompt", "talk"), cwd=acp_workdir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert model_server.wait_for_requests(2, 60)
            status = _json_lines(acpx_run("status").stdout)[-1]
            owner = status.get("pid")
            deadline = time.monotonic() + 30
            cancelled = False
            while not cancelled and time.monotonic() < deadline:  # the turn must be running when cancelled
                cancelled = bool(_json_lines(acpx_run("cancel").stdout)[-1].get("cancelled"))
            out, err = talking.communicate(timeout=60)
        finally:
            if talking.poll() is None:
                talking.kill()
                talking.wait()
        assert cancelled
        frames = _json_lines(out)
        assert any(f.get("method") == "session/cancel" for f in frames)
        assert [f["result"]["stopReason"] for f in frames if "stopReason" in (f.get("result") or {})] == ["cancelled"]
        # the partial answer is stored in the pando session
        last = stored_messages(acp_workdir, session_id)[-1]
        partial = "".join(p["data"].get("text", "") for p in last["parts"] if p["type"] == "text")
        assert last["role"] == "assistant" and partial.startswith("word") and len(partial) < len("word " * 200)
    finally:
        closed = acpx_run("sessions", "close")
        if owner:  # acpx's queue owner (it runs pando acp) ends with the session; bounded wait, then by pid
            deadline = time.monotonic() + 15
            while _pid_alive(owner) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(owner):
                os.kill(owner, signal.SIGKILL)
    assert closed.returncode == 0, closed.stderr
