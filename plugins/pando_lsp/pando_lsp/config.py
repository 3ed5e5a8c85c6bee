"""Which language servers exist: ``[lsp.NAME]`` tables plus well-known servers found on PATH."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.errors import ConfigError

# language id (LSP's) by file extension
LANGUAGE_IDS = {
    ".py": "python", ".pyi": "python",
    ".ts": "typescript", ".tsx": "typescriptreact", ".js": "javascript", ".jsx": "javascriptreact",
    ".mjs": "javascript", ".cjs": "javascript",
    ".go": "go", ".rs": "rust",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
}  # fmt: skip

# (name, command, args, extensions, root markers); the first found per language wins
WELL_KNOWN = [
    ("pylsp", "pylsp", [], [".py", ".pyi"], ["pyproject.toml", "setup.py", "setup.cfg"]),
    ("pyright", "pyright-langserver", ["--stdio"], [".py", ".pyi"], ["pyproject.toml", "pyrightconfig.json"]),
    ("basedpyright", "basedpyright-langserver", ["--stdio"], [".py", ".pyi"], ["pyproject.toml"]),
    (
        "typescript",
        "typescript-language-server",
        ["--stdio"],
        [".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs"],
        ["tsconfig.json", "package.json"],
    ),
    ("gopls", "gopls", [], [".go"], ["go.mod"]),
    ("rust-analyzer", "rust-analyzer", [], [".rs"], ["Cargo.toml"]),
    ("clangd", "clangd", [], [".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh"], ["compile_commands.json"]),
]

# the [lsp] keys that are settings, not server tables
SETTINGS = {"enabled", "wait_ms", "auto_detect"}


@dataclass
class ServerSpec:
    name: str
    command: str
    args: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    root_markers: list[str] = field(default_factory=list)
    initialization_options: dict[str, Any] | None = None
    source: str = "config"  # config | auto

    def handles(self, path: Path) -> bool:
        return path.suffix.lower() in self.extensions

    def resolved_command(self) -> str | None:
        return shutil.which(self.command)


def _extensions(raw: Any, name: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ConfigError(f"[lsp.{name}] extensions/filetypes must be a list of strings")
    return [item if item.startswith(".") else "." + item for item in (x.strip().lower() for x in raw) if item]


def _filetypes(raw: Any, name: str) -> list[str]:
    """``filetypes`` may name languages ("python") or extensions ("py")."""
    by_language: dict[str, list[str]] = {}
    for ext, language in LANGUAGE_IDS.items():
        by_language.setdefault(language, []).append(ext)
    out: list[str] = []
    for item in _extensions(raw, name):
        out.extend(by_language.get(item[1:], [item]))
    return out


def load_servers(section: dict[str, Any]) -> list[ServerSpec]:
    """The servers in effect: configured ones (``enabled = false`` drops one, also a well-known one of
    the same name), then the well-known servers on PATH for languages nobody configured."""
    configured: list[ServerSpec] = []
    disabled: set[str] = set()
    for name, table in section.items():
        if name in SETTINGS:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"[lsp] {name} must be a table ([lsp.{name}] with command = ...)")
        if table.get("enabled", True) is False:
            disabled.add(name)
            continue
        command = table.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"[lsp.{name}] needs command = \"...\" (the server's program)")
        args = table.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"[lsp.{name}] args must be a list of strings")
        extensions = _extensions(table.get("extensions"), name) + _filetypes(table.get("filetypes"), name)
        if not extensions:
            raise ConfigError(f"[lsp.{name}] needs filetypes = [...] or extensions = [...]")
        init = table.get("initialization_options")
        if init is not None and not isinstance(init, dict):
            raise ConfigError(f"[lsp.{name}] initialization_options must be a table")
        markers = table.get("root_markers", [])
        configured.append(ServerSpec(name, command, list(args), extensions, list(markers), init))
    servers = list(configured)
    if section.get("auto_detect", True):
        covered = {ext for spec in configured for ext in spec.extensions}
        for name, command, args, extensions, markers in WELL_KNOWN:
            if name in disabled or set(extensions) & covered or not shutil.which(command):
                continue
            servers.append(ServerSpec(name, command, list(args), list(extensions), list(markers), None, "auto"))
            covered |= set(extensions)
    return servers


def language_id(path: Path) -> str:
    return LANGUAGE_IDS.get(path.suffix.lower(), path.suffix.lstrip(".") or "plaintext")
