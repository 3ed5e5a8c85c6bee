"""Configuration sources, precedence, validation errors, plugin sections, redaction."""

from __future__ import annotations

import json

import pytest

from pando_core.config import ConfigSection, Field, load_config
from pando_core.errors import ConfigError

LUA = ConfigSection("lua", {"timeout": Field("float", 1.0), "scripts": Field("list", []), "strict": Field("bool", False)})


def test_precedence_user_then_home_then_project_then_env(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "pando").mkdir(parents=True)
    (home / ".config" / "pando" / "config.toml").write_text('[agent]\nmodel = "a/user"\nmax_tokens = 100\n')
    (home / ".pando.toml").write_text('[agent]\nmax_tokens = 200\n')
    work = tmp_path / "work"
    work.mkdir()
    (work / ".pando.toml").write_text('[agent]\nmodel = "a/project"\n')
    env = {"HOME": str(home), "PANDO_AGENT__MAX_TOKENS": "300"}
    config = load_config(work, env=env)
    assert config.get("agent.model") == "a/project"
    assert config.get("agent.max_tokens") == 300
    assert config.get("agent.max_requests_per_turn") == 50  # default
    assert config.sources[-1] == "environment"


def test_json_config_is_accepted(tmp_path):
    (tmp_path / ".pando.json").write_text(json.dumps({"lua": {"timeout": 2}}))
    config = load_config(tmp_path, [LUA], env={"HOME": str(tmp_path)})
    assert config.section("lua") == {"timeout": 2, "scripts": [], "strict": False}


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[lua]\ntimeout = "slow"\n', "lua.timeout must be a number, got 'slow' (str)"),
        ("[lua]\nstrict = 1\n", "lua.strict must be true or false"),
        ("[lua]\nscripts = [1, 2]\n", "lua.scripts must be a list of strings"),
        ('[runtime]\ntransport = "pigeon"\n', "runtime.transport must be one of auto, ipc, tcp"),
        ("lua = 3\n", "[lua] must be a table"),
    ],
)
def test_bad_values_name_file_key_and_type(tmp_path, toml, message):
    path = tmp_path / ".pando.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, [LUA], env={"HOME": str(tmp_path)})
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, [LUA], env={"HOME": str(tmp_path), "PANDO_LUA__TIMEOUT": "soon"})
    assert "PANDO_LUA__TIMEOUT" in str(info.value)


def test_invalid_toml_is_a_clear_error(tmp_path):
    (tmp_path / ".pando.toml").write_text("[agent\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(tmp_path, env={"HOME": str(tmp_path)})


def test_env_lists_and_bools(tmp_path):
    env = {"HOME": str(tmp_path), "PANDO_LUA__SCRIPTS": "a.lua, b.lua", "PANDO_LUA__STRICT": "yes"}
    config = load_config(tmp_path, [LUA], env=env)
    assert config.section("lua")["scripts"] == ["a.lua", "b.lua"]
    assert config.section("lua")["strict"] is True


def test_unknown_keys_warn(tmp_path):
    (tmp_path / ".pando.toml").write_text("[lua]\ntimout = 2\n")
    config = load_config(tmp_path, [LUA], env={"HOME": str(tmp_path)})
    assert any("unknown key lua.timout" in w for w in config.warnings)


def test_secrets_are_redacted(tmp_path):
    (tmp_path / ".pando.toml").write_text(
        '[providers.openai]\ntype = "openai"\napi_key = "sk-secret"\napi_key_env = "OPENAI_API_KEY"\n'
    )
    config = load_config(tmp_path, env={"HOME": str(tmp_path)})
    redacted = config.redacted()
    assert redacted["providers"]["openai"]["api_key"] == "***"
    assert redacted["providers"]["openai"]["api_key_env"] == "OPENAI_API_KEY"
    assert "sk-secret" not in json.dumps(redacted)


def test_config_show_cli(run_pando, pando_workdir):
    (pando_workdir / ".pando.toml").write_text('[agent]\nmodel = "openai/gpt-4o-mini"\n[providers.openai]\napi_key = "sk-x"\n')
    result = run_pando("--plugins", "none", "config", "show", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["config"]["agent"]["model"] == "openai/gpt-4o-mini"
    assert data["config"]["providers"]["openai"]["api_key"] == "***"
    text = run_pando("--plugins", "none", "config", "show")
    assert 'model = "openai/gpt-4o-mini"' in text.stdout
    (pando_workdir / ".pando.toml").write_text("[agent]\nmax_tokens = \"many\"\n")
    bad = run_pando("--plugins", "none", "config", "show")
    assert bad.returncode == 2
    assert "agent.max_tokens must be an integer" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_runtime_defaults_match_what_the_bus_uses_without_a_configuration():
    from pando_core.config import core_defaults
    from pando_core.runtime.protocol import DEFAULT_MAX_MESSAGE_BYTES

    assert core_defaults("runtime")["max_message_bytes"] == DEFAULT_MAX_MESSAGE_BYTES


def test_declared_aliases_are_moved_to_their_key(tmp_path):
    section = ConfigSection(
        "lua",
        {"scripts": Field("any", [], aliases=("script_path",)), "strict": Field("bool", False, aliases=("strict_mode",))},
    )
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".config" / "pando").mkdir(parents=True)
    work.mkdir()
    user, project = home / ".config" / "pando" / "config.toml", work / ".pando.toml"
    env = {"HOME": str(home)}

    def lua(**extra_env: str) -> dict:
        config = load_config(work, [section], env={**env, **extra_env})
        assert config.warnings == []
        return config.section("lua")

    project.write_text('[lua]\nscript_path = "hooks.lua"\nstrict_mode = true\n')
    assert lua() == {"scripts": "hooks.lua", "strict": True}
    assert lua(PANDO_LUA__STRICT="false")["strict"] is False  # the environment still comes last
    # across files the later one wins, under either name
    user.write_text('[lua]\nscripts = ["user.lua"]\n')
    assert lua()["scripts"] == "hooks.lua"
    user.write_text('[lua]\nscript_path = "user.lua"\n')
    project.write_text('[lua]\nscripts = ["project.lua"]\n')
    assert lua()["scripts"] == ["project.lua"]
    # one file giving both names is an error naming the file and both
    project.write_text('[lua]\nscripts = ["a.lua"]\nscript_path = "b.lua"\n')
    with pytest.raises(ConfigError, match=r"\.pando\.toml: lua\.script_path and lua\.scripts are the same setting"):
        load_config(work, [section], env=env)
    # the value is checked as the key's: the error names the file and the key
    project.write_text('[lua]\nstrict_mode = "yes"\n')
    with pytest.raises(ConfigError, match=r"\.pando\.toml: lua\.strict must be"):
        load_config(work, [section], env=env)
