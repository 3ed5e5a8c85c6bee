"""A third-party ACP client, ``acpx`` (npm, TypeScript SDK), driving ``pando acp``."""

from __future__ import annotations

import json
import subprocess
import sys

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
