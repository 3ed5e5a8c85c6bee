"""The bash read-only check end to end: the real `pando run` CLI (no --yolo) with the scripted model
server; the model asks for one bash command, then answers. What is not read-only must be refused
(nothing asks in a non-interactive run), change nothing outside the working directory and send no
secret to the model; read-only commands run unasked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

SECRET = "sk-test-SECRET"
OUTSIDE_TEXT = "sentinel-outside-content"

# {out} is a directory outside the working directory, holding keep.txt
REFUSED = [
    'env -S"touch {out}/made"',
    "git ls-remote --upload-pack='touch {out}/made' .",
    "git grep -O'touch {out}/made' foo",
    "sort -o {out}/keep.txt README.md",
    "sort -uo {out}/made README.md",
    "sort --outp={out}/made README.md",
    "uniq README.md {out}/made",
    "tree -o {out}/made",
    "git diff --output={out}/made",
    "cat README.md > {out}/made",
    "ls $(touch {out}/made)",
    "echo 'touch {out}/made' | sh",
    "cat {out}/keep.txt",
    "grep -r sentinel {out}",
    "find {out} -name keep.txt",
    "env",
    "printenv",
    "printenv OPENAI_API_KEY",
]

READ_ONLY = [
    ("ls -la", "README.md"),
    ("git status", "On branch"),
    ("cat README.md", "hello foo"),
    ("grep -rn foo .", "README.md:1:hello foo"),
]


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(directory)): (p.read_text(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def run_pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def project(pando_workdir: Path, pando_env: dict, tmp_path: Path):
    (pando_workdir / "README.md").write_text("hello foo\n")
    subprocess.run(["git", "init", "-q", str(pando_workdir)], check=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text(OUTSIDE_TEXT + "\n")
    env = dict(pando_env, OPENAI_API_KEY=SECRET, PANDO_E2E_VISIBLE="visible-in-env")
    return pando_workdir, outside, env


def everything_the_model_received(model_server) -> str:
    return json.dumps([{"headers": r.headers, "body": r.body} for r in model_server.received])


@pytest.mark.parametrize("template", REFUSED)
def test_a_command_that_is_not_read_only_is_refused_without_effect_or_leak(template, project, model_server):
    workdir, outside, env = project
    command = template.format(out=outside)
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.tool("bash", {"command": command}), Reply.text("done"))
    before = snapshot(outside)

    result = run_pando(workdir, env, "run", "-f", "json", "do it")

    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied", data
    assert data["denials"] == [{"tool": "bash", "action": "execute", "description": command}]
    assert result.returncode == 1
    assert snapshot(outside) == before
    received = everything_the_model_received(model_server)
    assert SECRET not in received
    assert OUTSIDE_TEXT not in received


@pytest.mark.parametrize(("command", "expected"), READ_ONLY)
def test_read_only_commands_still_run_unasked(command, expected, project, model_server):
    workdir, _, env = project
    write_model_config(workdir, model_server.base_url)
    model_server.script(Reply.tool("bash", {"command": command}), Reply.text("done"))

    result = run_pando(workdir, env, "run", "-f", "json", "look")

    data = json.loads(result.stdout)
    assert data["status"] == "success", (data, result.stderr)
    assert "denials" not in data
    tool_messages = [m for m in model_server.requests[1]["messages"] if m["role"] == "tool"]
    assert expected in tool_messages[0]["content"]


def test_a_deny_rule_refuses_a_read_only_command_even_with_yolo(project, model_server):
    workdir, _, env = project
    (workdir / ".env").write_text("DB_PASSWORD=hunter2\n")
    write_model_config(workdir, model_server.base_url, extra='\n[permissions]\ndeny_bash = ["cat *"]\n')
    model_server.script(Reply.tool("bash", {"command": "cd . && cat .env"}), Reply.text("done"))

    result = run_pando(workdir, env, "run", "--yolo", "-f", "json", "show me")

    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied", data
    assert "hunter2" not in everything_the_model_received(model_server)


def test_claude_prefix_patterns_in_the_permission_rules_are_whole_words(project, model_server):
    workdir, _, env = project
    (workdir / "keep.txt").write_text("keep")
    (workdir / "keepx.txt").write_text("keep")
    write_model_config(workdir, model_server.base_url,
                       extra='\n[permissions]\nallow_bash = ["touch one:*"]\ndeny_bash = ["rm keep.txt:*"]\n')
    model_server.script(
        Reply.tool("bash", {"command": "touch one two"}),
        Reply.tool("bash", {"command": "touch onex"}),
        Reply.tool("bash", {"command": "rm keep.txtx keepx.txt"}),
        Reply.tool("bash", {"command": "rm keep.txt"}),
        Reply.text("done"),
    )

    allowed = json.loads(run_pando(workdir, env, "run", "-f", "json", "touch").stdout)
    denied = json.loads(run_pando(workdir, env, "run", "--yolo", "-f", "json", "remove").stdout)

    assert (workdir / "one").exists() and (workdir / "two").exists() and not (workdir / "onex").exists()
    assert [d["description"] for d in allowed["denials"]] == ["touch onex"]
    assert (workdir / "keep.txt").exists()  # `rm keep.txt:*` refuses `rm keep.txt`, even with --yolo
    assert not (workdir / "keepx.txt").exists()  # but not `rm keep.txtx …`
    assert [d["description"] for d in denied["denials"]] == ["rm keep.txt"]


def test_an_allowed_printenv_shows_no_provider_key(project, model_server):
    workdir, _, env = project
    env["MY_PROVIDER_CREDENTIAL"] = "configured-key-SECRET"
    write_model_config(
        workdir,
        model_server.base_url,
        extra='api_key_env = "MY_PROVIDER_CREDENTIAL"\n\n[permissions]\nallow_bash = ["printenv*"]\n',
    )
    model_server.script(Reply.tool("bash", {"command": "printenv"}), Reply.text("done"))

    result = run_pando(workdir, env, "run", "-f", "json", "env please")

    data = json.loads(result.stdout)
    assert data["status"] == "success", (data, result.stderr)
    received = everything_the_model_received(model_server)
    assert "visible-in-env" in received  # printenv did run and its output reached the model
    assert SECRET not in received
    assert "configured-key-SECRET" not in received


# each of these is read-only or run by --yolo; a `cat *` deny rule must refuse them all
DENIED_DESPITE_SAFE_LIST = [
    ("ls && /bin/cat .env", []),  # the command named by its path
    ("ls; cat < .env", []),  # the file given as an input redirection
    ("ls; cat<.env", []),
    ("eval 'cat .env'", ["--yolo"]),  # an eval script
    ("f(){ cat .env; }; f", ["--yolo"]),  # a function body (not understood by the parser)
    ("ls; /usr/bin/cat .env", ["--yolo"]),
]


@pytest.mark.parametrize(("command", "flags"), DENIED_DESPITE_SAFE_LIST)
def test_a_deny_rule_refuses_every_matching_form(command, flags, project, model_server):
    workdir, _, env = project
    (workdir / ".env").write_text("DB_PASSWORD=hunter2\n")
    write_model_config(workdir, model_server.base_url, extra='\n[permissions]\ndeny_bash = ["cat *"]\n')
    model_server.script(Reply.tool("bash", {"command": command}), Reply.text("done"))

    result = run_pando(workdir, env, "run", *flags, "-f", "json", "show me")

    data = json.loads(result.stdout)
    assert data["status"] == "permission_denied", data
    assert data["denials"] == [{"tool": "bash", "action": "execute", "description": command}]
    assert "hunter2" not in everything_the_model_received(model_server)
