"""The bash tool under the real bubblewrap: what a sandboxed command may write, read and reach."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from pando_core.agent.tools import sandbox as sandboxing
from pando_core.agent.tools.base import ToolContext, ToolError
from pando_core.agent.tools.bash import BashTool
from pando_core.agent.tools.builtin import builtin_tools
from pando_core.agent.tools.sandbox import SandboxSettings, every_command_matches
from tests.support.sandboxing import LoopbackHttpServer, fetch_command, require_bwrap

FAKE_KEY = "-----BEGIN FAKE PRIVATE KEY----- pando-sandbox-test"


def sandboxed(**settings) -> BashTool:
    return BashTool(sandbox=SandboxSettings(mode="bwrap", **settings))


def make_ctx(workdir: Path, session: str | None = None) -> ToolContext:
    return ToolContext(workdir=workdir, session_id=session or uuid.uuid4().hex)


def run(tool: BashTool, ctx: ToolContext, command: str, **args):
    return asyncio.run(tool.run({"command": command, **args}, ctx))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    require_bwrap()
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(FAKE_KEY + "\n")
    (home / ".netrc").write_text("machine example.com password netrc-SECRET\n")
    (home / "notes.txt").write_text("an ordinary file\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_the_file_system_outside_the_workdir_is_read_only(workdir):
    target = Path("/etc") / f"pando-sandbox-{uuid.uuid4().hex}"
    result = run(sandboxed(), make_ctx(workdir), f"touch {target}")
    assert result.metadata["sandboxed"] is True
    assert result.metadata["exit_code"] != 0
    assert "Read-only file system" in result.content
    assert "(bash runs in a sandbox: only the working directory" in result.content  # why, for the model
    assert not target.exists()


def test_writes_inside_the_workdir_succeed_and_stay(workdir):
    ctx = make_ctx(workdir)
    tool = sandboxed()
    result = run(tool, ctx, "mkdir -p sub && echo made > sub/out.txt && cd sub && export KEPT=yes")
    assert result.metadata["exit_code"] == 0, result.content
    assert (workdir / "sub" / "out.txt").read_text() == "made\n"
    # the directory and exports carry over to the next sandboxed call, as without the sandbox
    assert run(tool, ctx, "echo $KEPT; pwd").content == f"yes\n{(workdir / 'sub').resolve()}"


def test_the_private_tmp_is_writable_kept_for_the_session_and_not_the_hosts(workdir):
    name = f"pando-sandbox-{uuid.uuid4().hex}"
    tool = sandboxed()
    session = uuid.uuid4().hex
    assert run(tool, make_ctx(workdir, session), f"echo x > /tmp/{name} && cat /tmp/{name}").content == "x"
    assert not (Path("/tmp") / name).exists()
    # the session's next call finds it, another session does not
    assert run(tool, make_ctx(workdir, session), f"cat /tmp/{name}").content == "x"
    assert run(tool, make_ctx(workdir), f"cat /tmp/{name}").metadata["exit_code"] != 0
    # between calls it holds the command's files only (the mount points of the workdir, which is
    # under /tmp here, and of pando's own temp directory are gone)
    host_dir = Path(tool.state_for(make_ctx(workdir, session)).sandbox_tmp)
    assert [p.name for p in host_dir.iterdir()] == [name]


def test_writable_paths_are_writable_too(workdir, tmp_path):
    extra = tmp_path / "cache"
    extra.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    tool = sandboxed(writable_paths=(str(extra),))
    assert run(tool, make_ctx(workdir), f"echo ok > {extra}/f").metadata["exit_code"] == 0
    assert (extra / "f").read_text() == "ok\n"
    # a directory outside /tmp's private copy and not listed stays read-only: the host /var/tmp
    target = Path("/var/tmp") / f"pando-sandbox-{uuid.uuid4().hex}"
    assert run(tool, make_ctx(workdir), f"touch {target}").metadata["exit_code"] != 0
    assert not target.exists()


def test_pandos_own_directory_is_read_only_inside_the_workdir(workdir):
    (workdir / ".pando").mkdir()
    result = run(sandboxed(), make_ctx(workdir), "touch .pando/planted; touch fine")
    assert "Read-only file system" in result.content
    assert not (workdir / ".pando" / "planted").exists()
    assert (workdir / "fine").exists()


def test_secrets_in_home_are_hidden(workdir, fake_home):
    # the home is writable (listed), so only hidden_paths keeps the key out of sight
    tool = sandboxed(writable_paths=(str(fake_home),))
    key = run(tool, make_ctx(workdir), "cat ~/.ssh/id_rsa")
    assert FAKE_KEY not in key.content
    assert key.metadata["exit_code"] != 0
    netrc = run(tool, make_ctx(workdir), "cat ~/.netrc; echo end")
    assert "netrc-SECRET" not in netrc.content
    assert run(tool, make_ctx(workdir), "cat ~/notes.txt").content == "an ordinary file"
    # and nothing the command does to the mask reaches the real files
    run(tool, make_ctx(workdir), "echo planted > ~/.ssh/authorized_keys")
    assert sorted(p.name for p in (fake_home / ".ssh").iterdir()) == ["id_rsa"]


def test_hidden_paths_are_configurable(workdir, fake_home):
    tool = sandboxed(writable_paths=(str(fake_home),), hidden_paths=("~/notes.txt",))
    assert "ordinary" not in run(tool, make_ctx(workdir), "cat ~/notes.txt").content
    assert FAKE_KEY in run(tool, make_ctx(workdir), "cat ~/.ssh/id_rsa").content


def test_pandos_environment_is_not_readable_through_proc(workdir):
    result = run(sandboxed(), make_ctx(workdir), f"cat /proc/{os.getpid()}/environ; ls /proc | grep -c '^[0-9]'")
    assert "PATH=" not in result.content


def test_network_is_off_unless_allowed(workdir, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "index.html").write_text("hello from loopback")
    server = LoopbackHttpServer(served)
    try:
        command = fetch_command(server.url)
        off = run(sandboxed(), make_ctx(workdir), command)
        assert "hello from loopback" not in off.content
        assert off.metadata["exit_code"] != 0
        assert "(bash runs in a sandbox without network" in off.content
        on = run(sandboxed(network=True), make_ctx(workdir), command)
        assert "hello from loopback" in on.content, on.content
        by_rule = sandboxed(network_commands=(f"{command.split()[0]} *",))
        assert "hello from loopback" in run(by_rule, make_ctx(workdir), command).content
        program = command.split()[0]  # Claude Code's prefix form: the program as a whole word
        by_prefix = sandboxed(network_commands=(f"{program}:*",))
        assert "hello from loopback" in run(by_prefix, make_ctx(workdir), command).content
        by_part = sandboxed(network_commands=(f"{program[:-1]}:*",))
        assert "hello from loopback" not in run(by_part, make_ctx(workdir), command).content
        # every simple command of the line must match: one that does not keeps the network off
        mixed = run(by_rule, make_ctx(workdir), f"true && {command}")
        assert "hello from loopback" not in mixed.content
    finally:
        server.stop()


def test_network_commands_match_every_simple_command():
    assert every_command_matches("pip install -e .", ["pip install *"])
    assert not every_command_matches("pip install x && python evil.py", ["pip install *"])
    assert every_command_matches("cd a && pip install x", ["pip install *", "cd *"])
    assert not every_command_matches("pip install $(python evil.py)", ["pip install *"])
    assert not every_command_matches("pip install x", [])
    assert every_command_matches("pip install -e .", ["pip install:*"])
    assert not every_command_matches("pip installx", ["pip install:*"])


def unique_sleep() -> str:
    """A sleep length no other process has on its command line."""
    return f"3{uuid.uuid4().int % 10**6}.{uuid.uuid4().int % 10**9}"


def processes_with(token: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if os.path.basename(argv[0]) == "sleep" and token in argv[1:]:
                found.append(entry.name)
    return found


def gone_within_30s(token: str) -> bool:
    deadline = time.monotonic() + 30
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_with(token)
    for pid in left:  # the test fails; leave nothing behind
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)
    return left == []


def test_timeout_kills_everything_inside_the_sandbox(workdir):
    token = unique_sleep()
    result = run(sandboxed(), make_ctx(workdir), f"sleep {token} & sleep {token}; wait", timeout=500)
    assert result.metadata["timed_out"] is True
    assert "Command was aborted before completion" in result.content
    assert gone_within_30s(token), "a sandboxed process survived the timeout"


def test_cancel_kills_everything_inside_the_sandbox(workdir):
    token = unique_sleep()
    marker = workdir / "started"

    async def scenario():
        event = asyncio.Event()
        ctx = ToolContext(workdir=workdir, session_id=uuid.uuid4().hex, cancel_event=event)
        task = asyncio.create_task(sandboxed().run({"command": f"touch started; sleep {token} & wait"}, ctx))
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        event.set()
        return await task

    result = asyncio.run(scenario())
    assert result.metadata["cancelled"] is True
    assert gone_within_30s(token), "a sandboxed process survived the cancel"


def test_a_killed_pando_takes_the_sandboxed_command_with_it(workdir):
    import subprocess
    import sys

    token = unique_sleep()
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from pando_core.agent.tools.base import ToolContext\n"
        "from pando_core.agent.tools.bash import BashTool\n"
        "from pando_core.agent.tools.sandbox import SandboxSettings\n"
        "tool = BashTool(sandbox=SandboxSettings(mode='bwrap'))\n"
        f"asyncio.run(tool.run({{'command': 'touch started; sleep {token}'}}, ToolContext(workdir=Path(sys.argv[1]))))\n"
    )
    # its temp directories go to tmp_path: a SIGKILLed process removes nothing
    scratch = workdir.parent / "scratch"
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code, str(workdir)], env=dict(os.environ, TMPDIR=str(scratch)))
    try:
        deadline = time.monotonic() + 30
        while not processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_with(token), "the sandboxed sleep never started"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert gone_within_30s(token), "the sandboxed command outlived the pando that ran it"


def test_bwrap_mode_without_bubblewrap_is_a_clear_error(workdir, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    sandboxing.probe.cache_clear()
    try:
        tool = BashTool(shell_path="/bin/bash", sandbox=SandboxSettings(mode="bwrap"))
        with pytest.raises(ToolError, match=r'sandbox = "bwrap" but bubblewrap \(bwrap\) is not installed'):
            run(tool, make_ctx(workdir), "echo never")
    finally:
        sandboxing.probe.cache_clear()


def test_auto_without_bubblewrap_warns_once_and_runs(workdir, monkeypatch, tmp_path, capfd):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sandboxing, "_warned", set())
    sandboxing.probe.cache_clear()
    try:
        tool = BashTool(shell_path="/bin/bash", sandbox=SandboxSettings(mode="auto"))
        first = run(tool, make_ctx(workdir), "echo one")
        second = run(tool, make_ctx(workdir), "echo two")
    finally:
        sandboxing.probe.cache_clear()
    assert (first.content, second.content) == ("one", "two")
    assert first.metadata["sandboxed"] is False
    warnings = [line for line in capfd.readouterr().err.splitlines() if "not sandboxed" in line]
    assert len(warnings) == 1, warnings
    assert "bubblewrap (bwrap) is not installed" in warnings[0]


def test_the_agents_bash_is_sandboxed_by_default_and_off_turns_it_off(workdir):
    bash = next(t for t in builtin_tools({}) if t.name == "bash")
    assert run(bash, make_ctx(workdir), "true").metadata["sandboxed"] is True
    assert "sandbox" in bash.description
    off = next(t for t in builtin_tools({"sandbox": "off"}) if t.name == "bash")
    assert run(off, make_ctx(workdir), "true").metadata["sandboxed"] is False


def git(*args: str, cwd: Path) -> str:
    import subprocess

    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


COMMIT = "echo change > f.txt && git add f.txt && git -c user.name=t -c user.email=t@e commit -qm from-sandbox"


@pytest.mark.parametrize("layout", ["subdirectory", "worktree"])
def test_git_commits_work_but_hooks_and_config_stay_read_only(layout, workdir, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "init", cwd=repo)
    if layout == "subdirectory":
        agent_dir = repo / "sub"
        agent_dir.mkdir()
    else:
        agent_dir = tmp_path / "wt"
        git("worktree", "add", "-q", str(agent_dir), cwd=repo)
    tool = sandboxed()

    committed = run(tool, make_ctx(agent_dir), COMMIT)
    assert committed.metadata["exit_code"] == 0, committed.content
    assert "from-sandbox" in git("log", "--all", "--format=%s", cwd=repo)

    planted = run(
        tool,
        make_ctx(agent_dir),
        'echo "#!/bin/sh" > "$(git rev-parse --git-common-dir)/hooks/pre-commit"; git config core.fsmonitor evil',
    )
    assert planted.metadata["exit_code"] != 0
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert "evil" not in (repo / ".git" / "config").read_text()
