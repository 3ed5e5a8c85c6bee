"""Shell hooks end to end: real hook scripts run by a real `pando run` against the scripted model
server, which records what the model received."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config


def run_pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def script(workdir: Path, name: str, body: str) -> str:
    path = workdir / "hooks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return f"$PANDO_PROJECT_DIR/hooks/{name}"


def toml_hooks(event: str, command: str, matcher: str = "", timeout: float | None = None) -> str:
    hook = f'type = "command", command = "{command}"' + (f", timeout = {timeout}" if timeout else "")
    return f'\n[[hooks.{event}]]\nmatcher = "{matcher}"\nhooks = [{{ {hook} }}]\n'


def alive(pid: int) -> bool:
    """A running process (a zombie waiting for its parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def tool_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def user_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"] if m["role"] == "user")


@pytest.fixture
def project(pando_workdir: Path, pando_env: dict):
    (pando_workdir / "README.md").write_text("hello\n")
    return pando_workdir, dict(pando_env)


def test_an_exit_2_pre_tool_use_hook_blocks_bash_and_the_model_reads_its_stderr(project, model_server):
    workdir, env = project
    command = script(workdir, "guard.sh", 'cat > "$PANDO_PROJECT_DIR/pre-input.json"\necho "no rm here, use trash" >&2\nexit 2\n')
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PreToolUse", command, "Bash"))
    model_server.script(Reply.tool("bash", {"command": "touch made-by-bash"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert not (workdir / "made-by-bash").exists()
    assert tool_messages(model_server.requests[1]) == ["no rm here, use trash"]
    received = json.loads((workdir / "pre-input.json").read_text())
    assert received["hook_event_name"] == "PreToolUse"
    assert received["tool_name"] == "Bash" and received["pando_tool_name"] == "bash"
    assert received["tool_input"]["command"] == "touch made-by-bash"
    assert received["cwd"] == str(workdir.resolve())
    assert received["session_id"] == json.loads(result.stdout)["session_id"]


def test_a_matcher_for_another_tool_lets_bash_run(project, model_server):
    workdir, env = project
    command = script(workdir, "guard.sh", "echo blocked >&2\nexit 2\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PreToolUse", command, "Edit|Write"))
    model_server.script(Reply.tool("bash", {"command": "touch made-by-bash"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert (workdir / "made-by-bash").exists()


def test_a_json_deny_refuses_the_call_with_its_reason(project, model_server):
    workdir, env = project
    answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                     "permissionDecisionReason": "writes are frozen today"}}
    command = script(workdir, "deny.sh", f"cat >/dev/null\necho '{json.dumps(answer)}'\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PreToolUse", command, "*"))
    model_server.script(Reply.tool("write", {"file_path": "new.txt", "content": "x"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert not (workdir / "new.txt").exists()
    assert tool_messages(model_server.requests[1]) == ["writes are frozen today"]


def test_a_json_allow_runs_a_call_the_permission_rules_would_refuse(project, model_server):
    workdir, env = project
    answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}
    command = script(workdir, "allow.sh", f"cat >/dev/null\necho '{json.dumps(answer)}'\n")
    extra = toml_hooks("PreToolUse", command, "Bash") + '\n[permissions]\ndeny_bash = ["rm *"]\n'
    write_model_config(workdir, model_server.base_url, extra=extra)
    (workdir / "keep.txt").write_text("keep\n")
    model_server.script(
        Reply.tool("bash", {"command": "touch allowed-by-hook"}),
        Reply.tool("bash", {"command": "rm keep.txt"}),
        Reply.text("ok"),
    )

    result = run_pando(workdir, env, "run", "-f", "json", "go")  # no --yolo: nothing else approves

    assert (workdir / "allowed-by-hook").exists(), result.stdout
    assert (workdir / "keep.txt").exists()  # a deny rule still refuses what a hook allowed
    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied"
    assert [d["description"] for d in data["denials"]] == ["rm keep.txt"]


def test_post_tool_use_sees_the_tool_response_and_adds_context(project, model_server):
    workdir, env = project
    answer = {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "remember to run the linter"}}
    command = script(workdir, "post.sh", f'cat > "$PANDO_PROJECT_DIR/post-input.json"\necho \'{json.dumps(answer)}\'\n')
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PostToolUse", command, "Read"))
    model_server.script(Reply.tool("view", {"file_path": "README.md"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    received = json.loads((workdir / "post-input.json").read_text())
    assert received["hook_event_name"] == "PostToolUse" and received["tool_name"] == "Read"
    assert "hello" in received["tool_response"]["content"]
    assert received["tool_response"]["is_error"] is False
    (content,) = tool_messages(model_server.requests[1])
    assert "hello" in content and content.endswith("remember to run the linter")


def test_user_prompt_submit_adds_context_the_model_receives(project, model_server):
    workdir, env = project
    command = script(workdir, "ctx.sh", 'cat > "$PANDO_PROJECT_DIR/prompt-input.json"\necho "The build is red on main."\n')
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("UserPromptSubmit", command))
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "what next")

    assert result.returncode == 0, result.stderr
    text = user_text(model_server.requests[0])
    assert "what next" in text and "The build is red on main." in text
    assert json.loads((workdir / "prompt-input.json").read_text())["prompt"].startswith("what next")


def test_a_blocking_user_prompt_submit_hook_sends_nothing(project, model_server):
    workdir, env = project
    command = script(workdir, "block.sh", "echo 'no secrets in prompts' >&2\nexit 2\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("UserPromptSubmit", command))
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "my password is x")

    data = json.loads(result.stdout)
    assert data["status"] == "error" and "no secrets in prompts" in data["error"]
    assert model_server.requests == []


def test_a_hanging_hook_times_out_with_a_warning_and_the_turn_goes_on(project, model_server):
    workdir, env = project
    command = script(workdir, "hang.sh", 'sleep 60 &\necho $! > "$PANDO_PROJECT_DIR/sleeper.pid"\nwait\n')
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PreToolUse", command, "Bash", timeout=1))
    model_server.script(Reply.tool("bash", {"command": "touch ran-anyway"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert (workdir / "ran-anyway").exists()
    assert "PreToolUse hook" in result.stderr and "timed out after 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    sleeper = int((workdir / "sleeper.pid").read_text())
    deadline = time.monotonic() + 30
    while alive(sleeper) and time.monotonic() < deadline:  # what the hook started ends with it
        time.sleep(0.1)
    assert not alive(sleeper)


def test_a_failing_hook_is_a_warning_not_an_error(project, model_server):
    workdir, env = project
    command = script(workdir, "broken.sh", "echo '{not json'\n")
    extra = toml_hooks("UserPromptSubmit", command) + toml_hooks("Stop", "exit 7")
    write_model_config(workdir, model_server.base_url, extra=extra)
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert "UserPromptSubmit hook" in result.stderr and "could not be read" in result.stderr
    assert "Stop hook `exit 7` exited with status 7" in result.stderr


def test_claude_settings_json_is_read_with_session_hooks(project, model_server):
    workdir, env = project
    log = workdir / "events.log"
    reader = f'{sys.executable} -c "import json,sys; print(json.load(sys.stdin)[\'hook_event_name\'])"'
    record = script(workdir, "record.sh", f'{reader} >> "$CLAUDE_PROJECT_DIR/events.log"\n')
    start = script(workdir, "start.sh", 'cat >/dev/null\necho "Project notes: deploys are on Fridays."\n')
    settings = {"hooks": {
        "SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": start}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": record}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": record}]}],
        "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": record}]}],
        "Stop": [{"hooks": [{"type": "command", "command": record}]}],
        "SessionEnd": [{"hooks": [{"type": "command", "command": record}]}],
    }}
    (workdir / ".claude").mkdir()
    (workdir / ".claude" / "settings.json").write_text(json.dumps(settings))
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.tool("bash", {"command": "true"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == ["UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"]
    assert "deploys are on Fridays" in user_text(model_server.requests[0])


def test_a_bad_hook_definition_is_a_one_line_error(project, model_server):
    workdir, env = project
    write_model_config(workdir, model_server.base_url, extra='\n[[hooks.PreToolUse]]\nmatcher = "("\nhooks = [{ command = "true" }]\n')

    result = run_pando(workdir, env, "run", "go")

    assert result.returncode == 2
    assert "not a valid regular expression" in result.stderr and "Traceback" not in result.stderr


def test_a_sub_agent_runs_tool_hooks_but_not_the_user_prompt_and_stop_hooks(project, model_server):
    workdir, env = project
    reader = f'{sys.executable} -c "import json,sys; d=json.load(sys.stdin); print(d[\'hook_event_name\'], d.get(\'tool_name\', \'\'))"'
    record = script(workdir, "record.sh", f'{reader} >> "$PANDO_PROJECT_DIR/events.log"\n')
    extra = "".join(toml_hooks(event, record, "*") for event in ("UserPromptSubmit", "PreToolUse", "Stop"))
    write_model_config(workdir, model_server.base_url, extra=extra)
    model_server.script(
        Reply.tool("agent", {"prompt": "read the readme"}),
        Reply.tool("view", {"file_path": "README.md"}),  # the sub-agent's request
        Reply.text("it says hello"),  # the sub-agent's answer
        Reply.text("done"),
    )

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert (workdir / "events.log").read_text().splitlines() == [
        "UserPromptSubmit ", "PreToolUse Task", "PreToolUse Read", "Stop ",
    ]


@pytest.mark.parametrize(("event", "runs"), [("PreToolUse", False), ("PostToolUse", True)])
def test_continue_false_stops_the_turn_with_its_reason(event, runs, project, model_server):
    workdir, env = project
    answer = {"continue": False, "stopReason": "the deploy window is closed"}
    command = script(workdir, "stop.sh", f"cat >/dev/null\necho '{json.dumps(answer)}'\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks(event, command, "Bash"))
    model_server.script(Reply.tool("bash", {"command": "touch ran"}), Reply.text("never asked"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    data = json.loads(result.stdout)
    assert data["status"] == "error" and data["error"] == f"stopped by a {event} hook: the deploy window is closed"
    assert len(model_server.requests) == 1
    assert (workdir / "ran").exists() is runs


def test_updated_input_replaces_the_arguments(project, model_server):
    workdir, env = project
    answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "updatedInput": {"command": "touch rewritten"}}}
    command = script(workdir, "rewrite.sh", f"cat >/dev/null\necho '{json.dumps(answer)}'\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("PreToolUse", command, "bash"))
    model_server.script(Reply.tool("bash", {"command": "touch original"}), Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert (workdir / "rewritten").exists() and not (workdir / "original").exists()


def test_claude_events_pando_lacks_are_skipped_with_a_warning_and_resume_is_a_session_start(project, model_server):
    workdir, env = project
    start = script(workdir, "start.sh", 'cat > "$PANDO_PROJECT_DIR/start-input.json"\n')
    settings = {"hooks": {
        "Notification": [{"hooks": [{"type": "command", "command": "true"}]}],
        "SessionStart": [{"matcher": "resume", "hooks": [{"type": "command", "command": start}]}],
    }}
    (workdir / ".claude").mkdir()
    (workdir / ".claude" / "settings.local.json").write_text(json.dumps(settings))
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.text("first"), Reply.text("second"))

    first = run_pando(workdir, env, "run", "-f", "json", "one")
    assert first.returncode == 0, first.stderr
    assert "hooks.Notification: pando has no such hook event" in first.stderr
    assert not (workdir / "start-input.json").exists()  # a new session is "startup", not "resume"
    second = run_pando(workdir, env, "run", "--continue", "-f", "json", "two")

    assert second.returncode == 0, second.stderr
    received = json.loads((workdir / "start-input.json").read_text())
    assert received["source"] == "resume"
    assert received["session_id"] == json.loads(first.stdout)["session_id"]


def test_session_end_is_listened_to_only_where_a_session_end_hook_is_defined(make_pando_context, pando_workdir, tmp_path):
    """A pando_session_ended listener makes the core follow every commit: none without a SessionEnd hook."""
    plain = make_pando_context()
    assert not plain.plugins.hooks.pando_session_ended.implemented
    assert plain.plugins.hooks.pando_before_tool_call.implemented  # the tool hooks are always there
    assert "core.shell-hooks" not in {info.name for info in plain.plugins.list()}  # not a listed plugin

    other = tmp_path / "other"
    (other / ".claude").mkdir(parents=True)
    (other / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"SessionEnd": [{"hooks": [{"command": "true"}]}]}}))
    assert make_pando_context(workdir=other).plugins.hooks.pando_session_ended.implemented


def test_user_level_claude_settings_hooks_run_before_the_project_ones(project, model_server, tmp_path):
    workdir, env = project
    home = tmp_path / "user-home"
    (home / ".claude").mkdir(parents=True)
    env["HOME"] = str(home)
    user_hook = script(workdir, "user.sh", "cat >/dev/null\necho 'from the user settings'\n")
    project_hook = script(workdir, "proj.sh", "cat >/dev/null\necho 'from the project settings'\n")
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [{"command": user_hook}]}]}}))
    (workdir / ".claude").mkdir()
    (workdir / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [{"command": project_hook}]}]}}))
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    text = user_text(model_server.requests[0])
    assert text.index("from the user settings") < text.index("from the project settings")


def session_export(workdir: Path, env: dict, session_id: str) -> dict:
    exported = run_pando(workdir, env, "sessions", "export", session_id, "-F", "json")
    assert exported.returncode == 0, exported.stderr
    return json.loads(exported.stdout)


def texts_of(messages: list[dict], role: str) -> list[str]:
    return ["".join(p["data"].get("text", "") for p in m["parts"] if p["type"] == "text") for m in messages if m["role"] == role]


def test_an_exit_2_stop_hook_makes_the_agent_go_on_with_its_stderr(project, model_server):
    workdir, env = project
    # blocks the first stop only: the second call sees stop_hook_active and lets the agent stop
    reader = f'{sys.executable} -c "import json,sys; print(json.load(sys.stdin)[\'stop_hook_active\'])"'
    command = script(workdir, "stop.sh", (
        f'active=$({reader})\necho "$active" >> "$PANDO_PROJECT_DIR/stop-calls.log"\n'
        'if [ "$active" = "False" ]; then echo "the tests were not run: run them" >&2; exit 2; fi\n'
    ))
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("Stop", command))
    model_server.script(Reply.text("all done"), Reply.text("ran the tests, all green"))

    result = run_pando(workdir, env, "run", "-f", "json", "fix it")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "success" and data["response"] == "ran the tests, all green"
    assert data["continuations"] == 1
    assert len(model_server.requests) == 2
    last_user = [m for m in model_server.requests[1]["messages"] if m["role"] == "user"][-1]
    assert last_user["content"] == "the tests were not run: run them"
    assert (workdir / "stop-calls.log").read_text().split() == ["False", "True"]
    assert "a Stop hook asked to go on (1): the tests were not run" in result.stderr
    messages = session_export(workdir, env, data["session_id"])["messages"]
    assert texts_of(messages, "user") == ["fix it", "the tests were not run: run them"]
    assert texts_of(messages, "assistant") == ["all done", "ran the tests, all green"]


def test_a_stop_hook_that_always_blocks_is_bounded(project, model_server):
    workdir, env = project
    answer = {"decision": "block", "reason": "keep going"}
    command = script(workdir, "stop.sh", f"cat >> \"$PANDO_PROJECT_DIR/stop-input.log\"\necho >> \"$PANDO_PROJECT_DIR/stop-input.log\"\necho '{json.dumps(answer)}'\n")
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("Stop", command))
    env["PANDO_AGENT__MAX_STOP_CONTINUATIONS"] = "2"
    model_server.script(Reply.text("one"), Reply.text("two"), Reply.text("three"), Reply.text("never sent"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["response"] == "three" and data["continuations"] == 2
    assert len(model_server.requests) == 3
    assert "not after 2 follow-up turns ([agent] max_stop_continuations)" in result.stderr
    calls = [json.loads(line) for line in (workdir / "stop-input.log").read_text().splitlines() if line.strip()]
    assert [c["stop_hook_active"] for c in calls] == [False, True, True]
    assert all(c["hook_event_name"] == "Stop" and c["session_id"] == data["session_id"] for c in calls)


def test_continue_false_wins_over_a_blocking_stop_hook(project, model_server):
    workdir, env = project
    block = script(workdir, "block.sh", "cat >/dev/null\necho 'go on' >&2\nexit 2\n")
    halt = script(workdir, "halt.sh", 'cat >/dev/null\necho \'{"continue": false, "stopReason": "budget spent"}\'\n')
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("Stop", block) + toml_hooks("Stop", halt))
    model_server.script(Reply.text("done"), Reply.text("never sent"))

    result = run_pando(workdir, env, "run", "-f", "json", "go")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["response"] == "done"
    assert len(model_server.requests) == 1
    assert "a Stop hook ended the session's work: budget spent" in result.stderr


ASK = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                              "permissionDecisionReason": "touching files needs a human"}}


def test_an_ask_decision_is_refused_where_nobody_can_be_asked_even_with_yolo(project, model_server):
    workdir, env = project
    command = script(workdir, "ask.sh", f"cat >/dev/null\necho '{json.dumps(ASK)}'\n")
    extra = toml_hooks("PreToolUse", command, "Bash") + '\n[permissions]\nallow_bash = ["touch *"]\n'
    write_model_config(workdir, model_server.base_url, extra=extra)
    model_server.script(Reply.tool("bash", {"command": "touch asked-marker"}), Reply.text("never sent"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "go")

    assert result.returncode == 1, result.stderr
    assert not (workdir / "asked-marker").exists()
    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied"
    assert [d["tool"] for d in data["denials"]] == ["bash"]
    assert data["denials"][0]["description"].startswith("touch asked-marker")
    assert len(model_server.requests) == 1  # a denial ends the turn
    (message,) = [m for m in session_export(workdir, env, data["session_id"])["messages"] if m["role"] == "tool"]
    (part,) = message["parts"]
    assert part["data"]["is_error"]
    assert "a PreToolUse hook asks to confirm this call (touching files needs a human)" in part["data"]["content"]
    assert "nobody can be asked here" in part["data"]["content"]


def ask_app(make_app, model_server, workdir: Path, answer: str, asked: list):
    command = script(workdir, "ask.sh", f"cat >/dev/null\necho '{json.dumps(ASK)}'\n")

    async def asker(request):
        asked.append(request)
        return answer

    from pando_core.app import AppOptions

    return make_app(
        model_server=model_server, config=toml_hooks("PreToolUse", command, "Bash"),
        options=AppOptions(startup_mode="run", yolo=True, interactive_permissions=asker),
    )


@pytest.mark.parametrize(("command", "answer", "status"), [
    ("touch ran-after-asking", "once", "success"),  # --yolo would have run it unasked
    ("touch ran-after-asking", "deny", "permission_denied"),
    ("ls", "deny", "permission_denied"),  # a read-only command would have run unasked
])
def test_an_ask_decision_goes_to_the_permission_question(command, answer, status, make_app, model_server, pando_workdir):
    import asyncio

    asked: list = []
    app = ask_app(make_app, model_server, pando_workdir, answer, asked)
    model_server.script(Reply.tool("bash", {"command": command}), Reply.text("ok"))
    session = app.sessions.create(title="t")

    result = asyncio.run(app.coder_agent.run(session["id"], "go"))

    assert len(asked) == 1  # once: the bash tool does not ask a second time
    assert asked[0].tool_name == "bash" and asked[0].description.startswith(command)
    assert "touching files needs a human" in asked[0].description
    assert (pando_workdir / "ran-after-asking").exists() is (answer == "once")
    assert result.status == status


@pytest.mark.slow
def test_the_interactive_session_shows_a_stop_hook_continuation(project, model_server):
    import pexpect

    workdir, env = project
    reader = f'{sys.executable} -c "import json,sys; print(json.load(sys.stdin)[\'stop_hook_active\'])"'
    command = script(workdir, "stop.sh", (
        f'if [ "$({reader})" = "False" ]; then echo "the tests were not run: run them" >&2; exit 2; fi\n'
    ))
    write_model_config(workdir, model_server.base_url, extra=toml_hooks("Stop", command))
    model_server.add_rule(contains="the tests were not run", response=Reply.text("Ran the tests: all green."))
    model_server.add_rule(contains="fix the parser", response=Reply.text("Fixed the parser."))
    env.update(TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "pando_core", "--plugins", "none"], cwd=str(workdir), env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 100))
    try:
        child.expect("pando \\(primary\\) › ")
        child.send("fix the parser\r")
        child.expect_exact("Fixed the parser.")
        child.expect_exact("↻ a Stop hook asked to go on (1): the tests were not run: run them")
        child.expect_exact("Ran the tests: all green.")
        child.expect("pando \\(primary\\) › ")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    (follow_up,) = [r for r in model_server.requests if r["messages"][-1]["content"] == "the tests were not run: run them"]
    assert [m["content"] for m in follow_up["messages"] if m["role"] == "assistant"] == ["Fixed the parser."]
