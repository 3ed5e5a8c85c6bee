"""Registers the core's command groups (each lives in its own module)."""

from __future__ import annotations

import importlib

# modules with a `register(cli)` taking the root typer app, in the order of `pando --help`
_GROUPS = [
    "plugins_cmd",
    "config_cmd",
    "snapshots_cmd",
    "run_cmd",
    "status_cmd",
    "doctor_cmd",
    "tools_cmd",
    "init_cmd",
    "models_cmd",
    "goal_cmd",
    "sessions_cmd",
    "commands_cmd",
    "context_cmd",
    "rewind_cmd",
    "serve_cmd",
    "db_cmd",
]


def register_all(cli) -> None:  # noqa: ANN001
    for module_name in _GROUPS:
        importlib.import_module(f"{__package__}.{module_name}").register(cli)
