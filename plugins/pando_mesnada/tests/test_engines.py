"""Engine command builders: each engine's command line and MCP-config form, the command template,
and the refusals (unknown engine, program missing, prompt too long for a command line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pando_mesnada import engines

from pando_core.errors import ValidationError

MCP = {"pando": {"command": "/usr/bin/pando-x", "args": ["mcp-server"]}}


def build(engine, tmp_path, **kw):
    kw.setdefault("model", "m1")
    return engines.build(
        engine, task_id="task-0000abcd", prompt="do it", work_dir=str(tmp_path), workdir=tmp_path,
        mcp_servers=kw.pop("mcp", MCP), mcp_dir=tmp_path / "mcp", **kw,
    )  # fmt: skip


def test_pando_engine_runs_this_pando_headless(tmp_path):
    command = build("pando", tmp_path)
    assert command.argv[:3] == [sys.executable, "-m", "pando_core"]
    assert command.argv[3:] == ["--cwd", str(tmp_path), "--yolo", "--output-format", "text", "--quiet", "--model", "m1",
                                "-p", "You are the task_id: task-0000abcd\n\ndo it"]  # fmt: skip
    assert command.env == {"NO_COLOR": "1"} and command.files == {}  # the child loads its own config


def test_claude_and_copilot_take_an_mcp_config_file(fake_engines, tmp_path):
    claude = build("claude", tmp_path)
    assert claude.argv[1:] == ["--print", "--output-format", "text", "--verbose", "--dangerously-skip-permissions",
                               "--model", "m1", "--mcp-config", str(tmp_path / "mcp/mcp-config.json"), "-p", "do it"]  # fmt: skip
    assert json.loads(claude.files[str(tmp_path / "mcp/mcp-config.json")]) == {"mcpServers": MCP}
    copilot = build("copilot", tmp_path)
    assert "--additional-mcp-config" in copilot.argv
    assert copilot.argv[copilot.argv.index("--additional-mcp-config") + 1] == "@" + str(tmp_path / "mcp/mcp-config.json")
    assert copilot.argv[-2:] == ["-p", "do it"] and "--no-custom-instructions" in copilot.argv


def test_gemini_opencode_and_codex_get_their_own_forms(fake_engines, tmp_path):
    gemini = build("gemini", tmp_path)
    settings = gemini.env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"]
    assert json.loads(gemini.files[settings]) == {"mcpServers": MCP} and gemini.argv[-2:] == ["--prompt", "do it"]
    opencode = build("opencode", tmp_path)
    config = json.loads(opencode.files[opencode.env["OPENCODE_CONFIG"]])
    assert config == {"mcp": {"pando": {"type": "local", "command": ["/usr/bin/pando-x", "mcp-server"], "enabled": True}}}
    assert opencode.argv[1:] == ["run", "--model", "m1", "do it"]
    codex = build("codex", tmp_path)
    assert 'mcp_servers.pando.command="/usr/bin/pando-x"' in codex.argv
    assert 'mcp_servers.pando.args=["mcp-server"]' in codex.argv and codex.argv[-1] == "do it"


def test_without_mcp_servers_no_config_is_written(fake_engines, tmp_path):
    claude = build("claude", tmp_path, mcp={})
    assert "--mcp-config" not in claude.argv and claude.files == {}


def test_command_template(fake_engines, tmp_path):
    command = build("command", tmp_path, config={"command": "fake-agent --dir {work_dir} --model {model} {prompt}"})
    assert command.argv[1:] == ["--dir", str(tmp_path), "--model", "m1", "do it"]
    assert Path(command.argv[0]).name == "fake-agent"
    with pytest.raises(ValidationError, match="set \\[mesnada\\] command"):
        build("command", tmp_path)
    with pytest.raises(ValidationError, match="template is not valid"):
        build("command", tmp_path, config={"command": "fake-agent {nope}"})


def test_aliases_and_unknown_engines():
    assert engines.canonical("claude-code") == "claude" and engines.canonical(None) == "pando"
    with pytest.raises(ValidationError, match="unknown engine 'vibe'"):
        engines.canonical("vibe")


def test_a_missing_program_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValidationError, match="engine claude: the program 'claude' is not on PATH"):
        build("claude", tmp_path)
