"""LuaConfig.from_dict validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pando_lua import __version__
from pando_lua.config import DEFAULT_MEMORY_LIMIT, LuaConfig, LuaConfigError
from pando_lua.plugin import SECTION

from pando_core.config import load_config
from pando_core.errors import ConfigError


def test_defaults() -> None:
    assert LuaConfig() == LuaConfig.from_dict({}) == LuaConfig.from_dict(None)
    cfg = LuaConfig()
    assert (cfg.scripts, cfg.timeout, cfg.strict, cfg.hot_reload, cfg.memory_limit) == (
        [],
        1.0,
        False,
        True,
        DEFAULT_MEMORY_LIMIT,
    )
    assert __version__ == "0.1.0"


def test_valid_values_and_aliases() -> None:
    cfg = LuaConfig.from_dict(
        {
            "scripts": ["a.lua", "b.lua"],
            "timeout": 2,
            "strict": True,
            "hot_reload": False,
            "memory_limit": 8 << 20,
        }
    )
    assert cfg.to_dict() == {
        "scripts": ["a.lua", "b.lua"],
        "timeout": 2.0,
        "strict": True,
        "hot_reload": False,
        "memory_limit": 8 << 20,
    }
    go = LuaConfig.from_dict(
        {"enabled": True, "script_path": "hooks.lua", "strict_mode": True, "timeout": "5s"}
    )
    assert go.scripts == ["hooks.lua"] and go.strict and go.timeout == 5.0
    assert LuaConfig.from_dict({"timeout": "250ms"}).timeout == 0.25
    assert LuaConfig.from_dict({"timeout": "1m"}).timeout == 60.0
    # pando_core.frontends.goal.parse_duration: hours and compound durations too
    assert LuaConfig.from_dict({"timeout": "1m30s"}).timeout == 90.0
    assert LuaConfig.from_dict({"timeout": "1h"}).timeout == 3600.0
    assert LuaConfig.from_dict({"memory_limit": "64MiB"}).memory_limit == 64 << 20
    assert LuaConfig.from_dict({"memory_limit": "2g"}).memory_limit == 2 << 30
    assert LuaConfig.from_dict({"scripts": "single.lua"}).scripts == ["single.lua"]


@pytest.mark.parametrize(
    ("d", "fragments"),
    [
        ({"scripts": 5}, ["lua.scripts", "list of script paths", "5 (int)"]),
        ({"scripts": ["ok", 3]}, ["lua.scripts[1]", "non-empty string", "3 (int)"]),
        ({"timeout": "soon"}, ["lua.timeout", "positive number of seconds", "'soon' (str)"]),
        ({"timeout": 0}, ["lua.timeout", "positive"]),
        ({"timeout": True}, ["lua.timeout", "True (bool)"]),
        ({"timeout": "inf"}, ["lua.timeout", "positive number of seconds"]),
        ({"timeout": "-2s"}, ["lua.timeout", "positive number of seconds"]),
        ({"strict": "yes"}, ["lua.strict", "expected a bool", "'yes' (str)"]),
        ({"hot_reload": 1}, ["lua.hot_reload", "expected a bool", "1 (int)"]),
        ({"memory_limit": "lots"}, ["lua.memory_limit", "positive integer number of bytes"]),
        ({"memory_limit": 1000}, ["lua.memory_limit", "at least"]),
        ({"memory_limit": 1.5}, ["lua.memory_limit", "1.5 (float)"]),
        ({"scirpts": []}, ["lua.scirpts", "unknown setting"]),
        ({"script_path": "a", "scripts": ["b"]}, ["given twice"]),
        ([1, 2], ["expected a table"]),
    ],
)
def test_invalid_values_name_the_key_and_expected_type(d, fragments: list[str]) -> None:
    with pytest.raises(LuaConfigError) as info:
        LuaConfig.from_dict(d)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_readme_config_block_passes_the_core_and_the_plugin(tmp_path) -> None:
    """The README's [lua] example ("32MiB", durations) is accepted by the declared section and parsed
    by LuaConfig; a bad value is a core ConfigError (one line, exit code 2)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```toml\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block is not None
    (tmp_path / ".pando.toml").write_text(block.group(1).replace('"32MiB"', '"64MiB"'), encoding="utf-8")
    config = load_config(tmp_path, [SECTION], env={"PANDO_LUA__TIMEOUT": "500ms"}, home=tmp_path)
    lua = LuaConfig.from_dict(config.section("lua"))
    assert (lua.memory_limit, lua.timeout) == (64 << 20, 0.5)
    assert LuaConfig.from_dict(SECTION.defaults()) == LuaConfig()
    with pytest.raises(ConfigError, match="lua.timeout"):
        LuaConfig.from_dict({"timeout": "soon"})


def test_go_names_in_a_config_file_reach_the_plugin_without_warnings(tmp_path) -> None:
    (tmp_path / ".pando.toml").write_text('[lua]\nscript_path = "hooks.lua"\nstrict_mode = true\n', encoding="utf-8")
    config = load_config(tmp_path, [SECTION], env={}, home=tmp_path)
    assert config.warnings == []
    lua = LuaConfig.from_dict(config.section("lua"))
    assert (lua.scripts, lua.strict) == (["hooks.lua"], True)
    (tmp_path / ".pando.toml").write_text('[lua]\nscripts = "one.lua"\n', encoding="utf-8")  # one path, as a string
    assert LuaConfig.from_dict(load_config(tmp_path, [SECTION], env={}, home=tmp_path).section("lua")).scripts == [
        "one.lua"
    ]
