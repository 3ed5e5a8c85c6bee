"""[lsp] parsing: configured tables, filetypes by language or extension, auto-detection on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pando_lsp.config import load_servers

from pando_core.errors import ConfigError


def test_filetypes_name_languages_or_extensions():
    (spec,) = load_servers({"auto_detect": False, "c": {"command": "clangd", "filetypes": ["cpp", "h"]}})
    assert spec.extensions == [".cc", ".cpp", ".cxx", ".hpp", ".hh", ".h"]
    assert spec.handles(Path("x/y.CPP")) and not spec.handles(Path("y.py"))


def test_auto_detection_finds_pylsp_on_path_and_enabled_false_drops_it(monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    names = [spec.name for spec in load_servers({}) if spec.source == "auto"]
    assert "pylsp" in names
    assert "pylsp" not in [spec.name for spec in load_servers({"pylsp": {"enabled": False}})]


def test_a_configured_server_covers_its_extensions_before_auto_detection(monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    specs = load_servers({"mine": {"command": "my-py-server", "extensions": ["py"]}})
    assert [(s.name, s.source) for s in specs if ".py" in s.extensions] == [("mine", "config")]


@pytest.mark.parametrize(
    "table, message",
    [
        ({"args": []}, "needs command"),
        ({"command": "x"}, "needs filetypes"),
        ({"command": "x", "filetypes": ["py"], "args": "nope"}, "args must be a list"),
        ({"command": "x", "filetypes": ["py"], "initialization_options": 3}, "initialization_options must be a table"),
    ],
)
def test_invalid_tables_are_one_line_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        load_servers({"auto_detect": False, "bad": table})
