"""The per-invocation context: working directory, selected plugins, merged configuration."""

from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

from .config import Config, load_config, read_config_files
from .plugins import Plugins, build_plugins, parse_names


class PandoContext:
    """What every command needs. Plugins reach it with ``pando_core.context.current()``."""

    def __init__(
        self,
        workdir: Path,
        *,
        requested_plugins: list[str] | None = None,
        extra_plugins: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``requested_plugins``: from ``--plugins``; None reads ``PANDO_PLUGINS`` from ``env``."""
        self.workdir = Path(workdir).resolve()
        self.env = dict(os.environ if env is None else env)
        # options given before the subcommand (`pando --model X run ...`) are defaults for run and goal
        self.root_options: dict[str, Any] = {}
        self._config_files = read_config_files(self.workdir, env=self.env)
        base = load_config(self.workdir, env=self.env, files=self._config_files)
        plugin_section = base.section("plugins")
        if requested_plugins is None:
            requested_plugins = parse_names(self.env.get("PANDO_PLUGINS"))
        if requested_plugins is None and self.env.get("PANDO_DISABLE_PLUGIN_AUTOLOAD"):
            requested_plugins = []
        self.plugins: Plugins = build_plugins(
            requested_plugins,
            config_enabled=plugin_section.get("enabled"),
            config_disabled=plugin_section.get("disabled"),
            extra=extra_plugins,
        )
        self.plugins.error_file = str(self.workdir / ".pando" / "plugin-errors.json")
        from .shell_hooks import plugin as shell_hooks

        shell_hooks.register(self.plugins, self.workdir, self._config_files.data)

    def with_root_options(self, output_format: str, quiet: bool, yolo: bool, model: str | None) -> tuple:
        """A subcommand's own options, completed by those given to ``pando`` itself."""
        root = self.root_options
        if output_format == "text" and root.get("output_format"):
            output_format = root["output_format"]
        return output_format, quiet or bool(root.get("quiet")), yolo or bool(root.get("yolo")), model or root.get("model")

    @cached_property
    def config(self) -> Config:
        sections = self.plugins.hooks.pando_config_sections.flat()
        config = load_config(self.workdir, sections, env=self.env, files=self._config_files)
        for warning in config.warnings:  # once per process: the configuration is loaded once
            print(f"pando: warning: {warning}", file=sys.stderr)
        return config

    @property
    def pando_dir(self) -> Path:
        return self.workdir / ".pando"


_current: PandoContext | None = None


def set_current(context: PandoContext | None) -> None:
    global _current
    _current = context


def current() -> PandoContext:
    if _current is None:
        raise RuntimeError("no pando context: this is only available while a pando command runs")
    return _current
