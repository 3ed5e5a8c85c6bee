"""Custom slash commands from markdown files: real files, a real `pando run /NAME args` whose
rendered prompt the scripted model server receives, `pando commands`, and the interactive /help
and invocation through a real pseudo-terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pando_core.slash_commands.catalog import find_commands, split_frontmatter
from pando_core.slash_commands.render import parse_invocation, substitute_arguments, tool_grants
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

PROMPT = "pando \\(primary\\) › "


def run_pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def command_file(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"] if m["role"] == "user")


@pytest.fixture
def project(pando_workdir: Path, pando_env: dict, model_server):
    (pando_workdir / "README.md").write_text("hello from the readme\n")
    write_model_config(pando_workdir, model_server.base_url)
    return pando_workdir, dict(pando_env)


# ------------------------------------------------------------------------------------ reading files


def test_frontmatter_and_arguments_are_read_as_claude_code_writes_them():
    meta, body = split_frontmatter(
        "---\ndescription: \"Review a file\"\nargument-hint: [file] [focus]\n"
        "allowed-tools: Bash(git diff:*), Bash(git log:*), Read\nmodel: scripted/m2\n---\nReview $1 for $2.\n"
    )
    assert meta["description"] == "Review a file" and meta["argument-hint"] == "[file] [focus]"
    assert meta["allowed-tools"] == "Bash(git diff:*), Bash(git log:*), Read"
    assert body == "Review $1 for $2."
    assert substitute_arguments(body, 'a.py "error handling"') == "Review a.py for error handling."
    assert substitute_arguments("Fix issue $ARGUMENTS now ($3)", "#12 quickly") == "Fix issue #12 quickly now ()"
    assert substitute_arguments("No placeholders.", "extra words") == "No placeholders.\n\nARGUMENTS: extra words"
    assert tool_grants(["Bash(git diff:*)", "Read", "Edit(src/*)"], Path("/w")) == [
        ("bash", "git diff"), ("bash", "git diff *"), ("view", "*"), ("edit", "/w/src/*"),
    ]


def test_directories_precedence_and_namespaces(tmp_path: Path):
    workdir, home = tmp_path / "w", tmp_path / "home"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    command_file(workdir / ".pando" / "commands", "fix", "pando's fix")
    command_file(workdir / ".claude" / "commands", "fix", "claude's fix")
    command_file(workdir / ".claude" / "commands" / "frontend", "component", "make a component")
    command_file(tmp_path / "xdg" / "pando" / "commands", "standup", "write my standup")
    command_file(home / ".config" / "pando" / "commands", "ignored", "not the XDG directory")
    command_file(home / ".claude" / "commands", "fix", "user claude's fix")

    found = find_commands(workdir, env)

    assert sorted(found) == ["fix", "frontend:component", "standup"]
    assert (found["fix"].body, found["fix"].source) == ("pando's fix", "project")
    assert found["frontend:component"].source == "claude-project"
    assert found["standup"].source == "user"
    assert parse_invocation("/frontend:component Button", found)[1] == "Button"
    assert parse_invocation("/component Button", found)[0].name == "frontend:component"
    assert parse_invocation("/usr/bin/env is broken", found) is None


# ---------------------------------------------------------------------------------- `pando run /NAME`


def test_pando_run_sends_the_rendered_command(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "review",
                 "---\ndescription: Review a file\n---\nReview $1 with a focus on $2.\nAll: $ARGUMENTS\n")
    model_server.script(Reply.text("looks fine"))

    result = run_pando(workdir, env, "run", "-f", "json", '/review README.md "error handling"')

    assert result.returncode == 0, result.stderr
    text = user_text(model_server.requests[0])
    assert "Review README.md with a focus on error handling." in text
    assert 'All: README.md "error handling"' in text
    assert "/review" not in text


def test_frontmatter_model_and_allowed_tools_apply_to_the_turn(project, model_server):
    workdir, env = project
    command_file(workdir / ".claude" / "commands", "touchit",
                 "---\nallowed-tools: Bash(touch:*)\nmodel: scripted/model-two\n---\nTouch $1 please\n")
    model_server.script(
        Reply.tool("bash", {"command": "touch granted.txt"}),
        Reply.tool("bash", {"command": "touch chained.txt && mkdir not-granted"}),
        Reply.text("done"),
    )

    result = run_pando(workdir, env, "run", "-f", "json", "/touchit granted.txt")  # no --yolo

    data = json.loads(result.stdout)
    assert model_server.requests[0]["model"] == "model-two"
    assert (workdir / "granted.txt").exists()
    assert not (workdir / "not-granted").exists() and not (workdir / "chained.txt").exists()
    assert data["status"] == "permission_denied"  # `touch:*` is one plain touch, not a chain
    assert [d["description"] for d in data["denials"]] == ["touch chained.txt && mkdir not-granted"]


def test_a_bash_prefix_grant_covers_the_prefix_as_a_whole_word_only(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "touchone", "---\nallowed-tools: Bash(touch one:*)\n---\nTouch\n")
    model_server.script(
        Reply.tool("bash", {"command": "touch one"}),
        Reply.tool("bash", {"command": "touch one two"}),
        Reply.tool("bash", {"command": "touch onex"}),
        Reply.text("done"),
    )

    result = run_pando(workdir, env, "run", "-f", "json", "/touchone")  # no --yolo

    data = json.loads(result.stdout)
    assert (workdir / "one").exists() and (workdir / "two").exists()
    assert not (workdir / "onex").exists()  # `touch one:*` is `touch one` and its arguments, not `touch onex`
    assert [d["description"] for d in data["denials"]] == ["touch onex"]


def test_the_model_option_wins_over_the_frontmatter(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "ask", "---\nmodel: scripted/model-two\n---\nHi\n")
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "--model", "scripted/model-three", "/ask")

    assert result.returncode == 0, result.stderr
    assert model_server.requests[0]["model"] == "model-three"


def test_shell_output_and_files_are_included_under_the_permission_rules(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "ctx",
                 "Status: !`echo status-$1`\n"
                 "Echoed: !`echo @README.md`\n"
                 "Read @README.md and @missing.txt, then answer.\n")
    model_server.script(Reply.text("ok"))

    result = run_pando(workdir, env, "run", "-f", "json", "/ctx green")

    assert result.returncode == 0, result.stderr
    text = user_text(model_server.requests[0])
    assert "Status: status-green" in text  # read-only: runs unasked, as in the bash tool
    assert "Read README.md and @missing.txt, then answer." in text
    assert "Contents of README.md:\n```\nhello from the readme\n```" in text
    assert "Echoed: @README.md" in text and text.count("Contents of README.md") == 1  # output attaches nothing


def test_a_shell_inclusion_the_rules_do_not_allow_refuses_the_command(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "prep", "Status: !`git status`\nMade: !`touch made-by-command && echo made`\n")
    model_server.script(Reply.text("never sent"))

    result = run_pando(workdir, env, "run", "-f", "json", "/prep")

    assert result.returncode == 2
    assert not (workdir / "made-by-command").exists()
    assert model_server.requests == []
    line = result.stderr.strip().splitlines()[-1]
    assert "/prep: `touch made-by-command && echo made` was not run: it needs permission and nobody can be asked here" in line
    assert "nothing was sent" in line and "Traceback" not in result.stderr


def test_a_deny_rule_refuses_a_shell_inclusion_even_with_yolo(project, model_server):
    workdir, env = project
    write_model_config(workdir, model_server.base_url, extra='\n[permissions]\ndeny_bash = ["touch *"]\n')
    command_file(workdir / ".pando" / "commands", "prep",
                 "---\nallowed-tools: Bash(touch:*)\n---\n!`touch denied-marker`\ngo\n")
    model_server.script(Reply.text("never sent"))

    result = run_pando(workdir, env, "run", "--yolo", "/prep")

    assert result.returncode == 2, result.stderr
    assert not (workdir / "denied-marker").exists()
    assert "`touch denied-marker` was not run" in result.stderr
    assert model_server.requests == []


def test_a_shell_inclusion_runs_in_the_bash_sandbox(project, model_server):
    from pando_core.agent.tools.sandbox import probe

    found = probe()
    if not found.works:
        pytest.skip(f"bubblewrap cannot sandbox here: {found.problem}")
    workdir, env = project
    outside = Path("/usr") / f"pando-inclusion-{workdir.parent.name}"  # read-only in the sandbox
    command_file(workdir / ".pando" / "commands", "prep",
                 f"---\nallowed-tools: Bash(touch:*)\n---\nInside: !`touch inside-marker`\nOutside: !`touch {outside}`\n")
    model_server.script(Reply.text("ok"))
    try:
        result = run_pando(workdir, env, "run", "/prep")

        assert result.returncode == 0, result.stderr
        assert (workdir / "inside-marker").exists()
        assert not outside.exists()  # the sandbox keeps everything but the workdir read-only
    finally:
        outside.unlink(missing_ok=True)
    text = user_text(model_server.requests[0])
    assert "Read-only file system" in text and "Exit code 1" in text


def test_allowed_tools_let_a_shell_inclusion_run_and_deny_rules_still_refuse(project, model_server):
    workdir, env = project
    write_model_config(workdir, model_server.base_url, extra='\n[permissions]\ndeny_bash = ["rm *"]\n')
    (workdir / "keep.txt").write_text("keep")
    command_file(workdir / ".pando" / "commands", "prep",
                 "---\nallowed-tools: [\"Bash(touch:*)\"]\n---\n!`touch prepared`\ngo\n")
    command_file(workdir / ".pando" / "commands", "wipe",
                 "---\nallowed-tools: [\"Bash(touch:*)\", \"Bash(rm:*)\"]\n---\n!`touch wiped-first`\n!`rm keep.txt`\ngo\n")
    model_server.script(Reply.text("ok"))

    prepared = run_pando(workdir, env, "run", "/prep")
    wiped = run_pando(workdir, env, "run", "/wipe")

    assert prepared.returncode == 0, prepared.stderr
    assert (workdir / "prepared").exists()
    assert wiped.returncode == 2
    assert "`rm keep.txt` was not run: a [permissions] deny_bash rule refuses it" in wiped.stderr
    assert (workdir / "keep.txt").exists()
    assert not (workdir / "wiped-first").exists()  # every command is checked before the first runs
    assert len(model_server.requests) == 1


# ---------------------------------------------------------------------------------- interactive


@pytest.mark.slow
def test_interactive_help_lists_custom_commands_and_runs_one(project, model_server):
    workdir, env = project
    command_file(workdir / ".pando" / "commands", "greet", "---\ndescription: Say hello to someone\nargument-hint: [name]\n---\nSay hello to $1.\n")
    command_file(workdir / ".pando" / "commands", "prep", "Output: !`touch asked.txt && echo touched-it`\n")
    command_file(workdir / ".pando" / "commands", "wipe", "!`rm keep.txt`\nthen go\n")
    (workdir / "keep.txt").write_text("keep")
    write_model_config(workdir, model_server.base_url, extra='\n[permissions]\ndeny_bash = ["rm *"]\n')
    model_server.add_rule(contains="Say hello to Ada", response=Reply.text("Hello, Ada!"))
    model_server.add_rule(contains="Output: touched-it", response=Reply.text("Prepared it."))
    env.update(TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "pando_core", "--plugins", "none"], cwd=str(workdir), env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 100))
    try:
        child.expect(PROMPT)
        child.send("/help\r")
        child.expect_exact("Custom commands")
        child.expect_exact("/greet [name]")
        child.expect_exact("Say hello to someone (project)")
        child.expect(PROMPT)
        child.send("/greet Ada\r")
        child.expect_exact("Hello, Ada!")
        child.expect(PROMPT)
        child.send("/prep\r")  # its !`touch …` is not read-only: the session asks first
        child.expect("Allow bash\\?")
        child.expect("Deny")
        child.send("\r")  # the first choice, "Allow once"
        child.expect_exact("Prepared it.")
        child.expect(PROMPT)
        child.send("/wipe\r")  # refused by a deny rule: no question, nothing sent
        child.expect_exact("✗ /wipe: `rm keep.txt` was not run: a [permissions] deny_bash rule refuses it")
        child.expect(PROMPT)
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert "Say hello to Ada." in user_text(model_server.requests[0])
    assert (workdir / "asked.txt").exists()
    assert (workdir / "keep.txt").exists()
    assert not any("then go" in json.dumps(request) for request in model_server.requests)


@pytest.mark.slow
def test_a_shell_inclusion_runs_from_the_workdir_root_whatever_the_session_cd(project, model_server):
    workdir, env = project
    root = workdir.resolve()
    (root / "sub").mkdir()
    (root / "other").mkdir()
    command_file(workdir / ".pando" / "commands", "where", "Dir: !`pwd`\nThen: !`cd other && pwd`\n")
    config = workdir / ".pando.toml"
    config.write_text(config.read_text().replace("[agent]\n", '[agent]\ntitle_model = "scripted/title-model"\n', 1))
    model_server.add_rule(model="title-model", response=Reply.text("A title"))  # not taken from the script
    model_server.script(
        Reply.tool("bash", {"command": "cd sub"}), Reply.text("Moved."),  # the session's bash is now in sub/
        Reply.text("Seen."),  # the answer to /where
        Reply.tool("bash", {"command": "pwd"}), Reply.text("Asked."),
    )
    env.update(TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "pando_core", "--plugins", "none"], cwd=str(workdir), env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 100))
    try:
        child.expect(PROMPT)
        child.send("go into sub\r")
        child.expect_exact("Moved.")
        child.expect(PROMPT)
        child.send("/where\r")
        child.expect_exact("Seen.")
        child.expect(PROMPT)
        child.send("where is the shell now\r")
        child.expect_exact("Asked.")
        child.expect(PROMPT)
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
    turns = [request for request in model_server.requests if request["model"] != "title-model"]
    rendered = user_text(turns[2])
    assert f"Dir: {root}\n" in rendered + "\n"  # not sub/, where an earlier `cd` left the session's bash
    assert f"Then: {root / 'other'}" in rendered
    tool_results = [m["content"] for m in turns[4]["messages"] if m["role"] == "tool"]
    assert str(root / "sub") in tool_results[-1]  # the command's own `cd other` did not move the session
