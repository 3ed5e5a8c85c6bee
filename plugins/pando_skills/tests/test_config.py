from __future__ import annotations

from pathlib import Path

import pytest
from pando_skills.config import SkillsConfig
from pando_skills.errors import ConfigError


def test_defaults() -> None:
    config = SkillsConfig.from_dict(None)
    assert config == SkillsConfig()
    assert (config.enabled, config.paths, config.catalog_url) == (True, [], "https://skills.sh")
    assert (config.budget_tokens, config.max_active, config.tools, config.default_scope) == (
        4000,
        20,
        True,
        "project",
    )


def test_plugin_section_defaults_match_the_dataclass() -> None:
    """`pando config` shows the section defaults; the library defaults must be the same values."""
    from pando_skills.plugin import SECTION

    assert SkillsConfig.from_dict(SECTION.defaults()) == SkillsConfig()


def test_spellings_and_nested_catalog() -> None:
    config = SkillsConfig.from_dict(
        {
            "Enabled": False,
            "Paths": ["./agents/skills"],
            "budget-tokens": 8192,
            "max_active": 5,
            "SkillsCatalog": {"Enabled": False, "BaseURL": "http://127.0.0.1:9", "DefaultScope": "global"},
        }
    )
    assert config.enabled is False and config.paths == ["./agents/skills"]
    assert (config.budget_tokens, config.max_active) == (8192, 5)
    assert (config.catalog_enabled, config.catalog_url, config.default_scope) == (
        False,
        "http://127.0.0.1:9",
        "global",
    )
    settings = config.settings("/w", "/h")
    assert (settings.workdir, settings.home, settings.catalog_url) == (Path("/w"), Path("/h"), "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"enabled": "yes"}, "skills.enabled must be true or false, got a string 'yes'"),
        ({"paths": "./x"}, "skills.paths must be a list of strings, got a string './x'"),
        ({"paths": [1]}, "skills.paths must be a list of strings"),
        ({"budget_tokens": "4000"}, "skills.budget_tokens must be an integer, got a string '4000'"),
        ({"budget_tokens": True}, "skills.budget_tokens must be an integer, got a boolean"),
        ({"max_active": 0}, "skills.max_active must be positive"),
        ({"catalog_url": "skills.sh"}, "must be an http:// or https:// URL"),
        ({"default_scope": "all"}, "must be 'project' or 'global'"),
        ({"budjet": 1}, "unknown config key skills.budjet"),
        ([], "skills must be a table/mapping"),
    ],
)
def test_type_errors(data, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SkillsConfig.from_dict(data)
    assert message in str(info.value)


def test_config_error_is_a_core_config_error() -> None:
    """Raised while the App is built, it must reach the user as `pando: error: ...` (exit code 2)."""
    from pando_skills.errors import SkillsError

    from pando_core.errors import ConfigError as CoreConfigError

    with pytest.raises(CoreConfigError) as info:
        SkillsConfig.from_dict({"max_active": 0})
    assert isinstance(info.value, SkillsError) and info.value.exit_code == 2


def test_the_section_is_the_one_source_of_the_defaults() -> None:
    from pando_skills.catalog import DEFAULT_CATALOG_URL, DEFAULT_TIMEOUT
    from pando_skills.config import SCOPES, SkillsSettings
    from pando_skills.plugin import SECTION

    defaults = SECTION.defaults()
    settings = SkillsSettings(workdir=Path("/w"), home=Path("/h"))
    assert (settings.paths, settings.catalog_url, settings.default_scope, settings.catalog_timeout) == (
        defaults["paths"],
        defaults["catalog_url"],
        defaults["default_scope"],
        defaults["catalog_timeout"],
    )
    assert (DEFAULT_CATALOG_URL, DEFAULT_TIMEOUT) == (defaults["catalog_url"], defaults["catalog_timeout"])
    assert SCOPES == ("project", "global")
    assert SkillsConfig().paths is not SkillsConfig().paths  # a fresh list each time


def test_go_names_in_a_config_file_reach_the_plugin_without_warnings(tmp_path: Path) -> None:
    from pando_skills.plugin import SECTION

    from pando_core.config import load_config

    (tmp_path / ".pando.toml").write_text(
        '[skills]\nBaseURL = "http://127.0.0.1:9"\nDefaultScope = "global"\ntools_enabled = false\n', encoding="utf-8"
    )
    config = load_config(tmp_path, [SECTION], env={}, home=tmp_path)
    assert config.warnings == []
    skills = SkillsConfig.from_dict(config.section("skills"))
    assert (skills.catalog_url, skills.default_scope, skills.tools) == ("http://127.0.0.1:9", "global", False)
