"""Reading [mcp.servers.NAME] and .mcp.json: expansion, precedence, sources, validation."""

from __future__ import annotations

import json

import pytest
from pando_mcp.config import DEFAULT_CALL_TIMEOUT, Expander, load_servers, server_spec

from pando_core.errors import ConfigError


def test_variables_expand_with_defaults_and_unset_ones_are_reported():
    expand = Expander({"HOME": "/h", "EMPTY": ""})
    assert expand("${HOME}/x ${NOPE:-fallback} ${EMPTY:-d} $HOME") == "/h/x fallback d $HOME"
    assert expand("a${MISSING}b") == "ab" and expand.missing == ["MISSING"]


def test_claude_code_mcp_json_is_read_and_pando_wins_a_clash(tmp_path):
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "github": {"command": "${BIN_DIR:-/opt}/gh-mcp", "args": ["--token", "${GH_TOKEN}"], "env": {"X": "${GH_TOKEN}"}},
        "docs": {"type": "http", "url": "https://${HOST}/mcp", "headers": {"Authorization": "Bearer ${GH_TOKEN}"}},
        "shared": {"command": "from-json"},
    }}))
    section = {"read_mcp_json": True, "servers": {"shared": {"command": "from-pando", "timeout": "45s"}}}
    specs = {s.name: s for s in load_servers(section, tmp_path, {"GH_TOKEN": "t0k", "HOST": "example.com"})}
    assert specs["github"].command == "/opt/gh-mcp"
    assert specs["github"].args == ["--token", "t0k"] and specs["github"].env == {"X": "t0k"}
    assert specs["github"].transport == "stdio" and specs["github"].source == str(tmp_path / ".mcp.json")
    assert specs["docs"].url == "https://example.com/mcp" and specs["docs"].headers == {"Authorization": "Bearer t0k"}
    assert specs["shared"].command == "from-pando" and specs["shared"].call_timeout == 45
    assert specs["shared"].source == "pando config"  # not declared in any config file of this test


def test_read_mcp_json_false_ignores_the_file(tmp_path):
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}}))
    assert load_servers({"read_mcp_json": False, "servers": {}}, tmp_path, {}) == []


def test_source_names_the_pando_file_that_declares_the_server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / ".pando.toml").write_text('[mcp.servers.t]\ncommand = "x"\n')
    specs = load_servers({"servers": {"t": {"command": "x"}}}, tmp_path, {"HOME": str(home)})
    assert specs[0].source == str(tmp_path / ".pando.toml")


@pytest.mark.parametrize(
    ("raw", "transport"),
    [({"command": "x"}, "stdio"), ({"url": "http://h/mcp"}, "http"), ({"type": "streamable-http", "url": "u"}, "http"),
     ({"type": "sse", "url": "u"}, "sse"), ({"type": "local", "command": ["npx", "-y", "pkg"]}, "stdio")],
)
def test_transport_spellings_of_peers(raw, transport):
    spec = server_spec("s", raw, "f", {})
    assert spec.transport == transport
    if raw.get("type") == "local":
        assert (spec.command, spec.args) == ("npx", ["-y", "pkg"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [({"type": "carrier-pigeon", "command": "x"}, "type must be stdio, sse or http"),
     ({"type": "stdio"}, "needs a command"), ({"type": "sse"}, "needs a url"),
     ({"command": "x", "timeout": "soon"}, "timeout must be seconds"), ({"command": "x", "args": "a b"}, "args must be a list")],
)
def test_invalid_entries_are_one_line_config_errors(raw, message):
    with pytest.raises(ConfigError) as info:
        server_spec("s", raw, "/p/.pando.toml", {})
    assert message in str(info.value) and "/p/.pando.toml: mcp server 's'" in str(info.value)
    assert "\n" not in str(info.value)


def test_timeouts_and_go_style_env_lists():
    spec = server_spec("s", {"command": "x", "env": ["A=1", "B=x=y"], "enabled": False}, "f", {})
    assert spec.env == {"A": "1", "B": "x=y"} and not spec.enabled
    assert spec.call_timeout == DEFAULT_CALL_TIMEOUT and spec.connect_timeout == 15
    assert server_spec("s", {"command": "x", "timeout": 0}, "f", {}).call_timeout == DEFAULT_CALL_TIMEOUT
    assert server_spec("s", {"command": "x", "timeout": "2m"}, "f", {}).connect_timeout == 120
    assert server_spec("s", {"command": "x", "timeout": 5}, "f", {}).connect_timeout == 15


def test_unset_variable_and_unknown_keys_become_warnings():
    spec = server_spec("s", {"command": "${NOPE}x", "colour": "red"}, "f", {})
    assert spec.warnings == ["${NOPE} is not set", "unknown keys ignored: colour"]
