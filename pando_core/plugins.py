"""Plugin discovery, selection, loading with error isolation, and hook dispatch.

Plugins are found through the entry point group ``pando.plugins``; the entry point's name is the
plugin's name (the one used in ``--plugins`` and ``PANDO_PLUGINS``). A plugin that fails to import or
to register is reported and skipped, unless ``PANDO_STRICT_PLUGINS=1``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import UsageError
from .hooks import Hooks, check_implementation, declared_kinds
from .hooks import strict_mode as strict_mode

log = logging.getLogger("pando.plugins")

ENTRY_POINT_GROUP = "pando.plugins"


class PluginLoadError(Exception):
    """A plugin failed to load while strict mode was on."""


@dataclass
class PluginInfo:
    name: str
    version: str = ""
    distribution: str = ""
    status: str = "loaded"  # loaded | error | disabled
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    hook_errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # hook -> count, last_error, at

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Candidate:
    name: str
    value: str
    distribution: str
    version: str
    entry_point: Any


def installed_plugins() -> dict[str, _Candidate]:
    """Every plugin entry point installed in this environment, by name.

    The scan (importlib.metadata, which imports the email package) is cached per user, keyed by
    the modification times of the sys.path directories: installing, upgrading or removing a
    distribution changes its directory, so a stale cache is never used.
    """
    fingerprint = _path_fingerprint()
    cached = _read_cache(fingerprint)
    if cached is not None:
        return cached
    from importlib.metadata import entry_points

    found: dict[str, _Candidate] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        name, version = _name_and_version(getattr(ep, "dist", None))
        found.setdefault(ep.name, _Candidate(ep.name, ep.value, name, version, ep))
    _write_cache(fingerprint, found)
    return found


def _cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pando", "plugins.json")


def _path_fingerprint() -> list:
    stamps = []
    cwd = os.getcwd()
    for entry in sys.path:
        if entry in ("", ".", cwd):
            continue  # `python -m` puts the working directory first; it holds no distributions
        try:
            stamps.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            stamps.append([entry, None])
    return stamps


def _read_cache(fingerprint: list) -> dict[str, _Candidate] | None:
    import json

    try:
        with open(_cache_file(), encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("fingerprint") != fingerprint or data.get("format") != 1:
            return None
        return {
            row["name"]: _Candidate(row["name"], row["value"], row["distribution"], row["version"], None)
            for row in data["plugins"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(fingerprint: list, found: dict[str, _Candidate]) -> None:
    import json
    from pathlib import Path

    from .fsutil import atomic_write

    path = Path(_cache_file())
    rows = [{"name": c.name, "value": c.value, "distribution": c.distribution, "version": c.version} for c in found.values()]
    data = json.dumps({"format": 1, "fingerprint": fingerprint, "plugins": rows}).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError:
        pass  # a cache we cannot write only costs start-up time


def load_entry_point(candidate: _Candidate) -> Any:
    """Import what an entry point names ("module" or "module:attribute")."""
    if candidate.entry_point is not None:
        return candidate.entry_point.load()
    import importlib

    module_name, _, attribute = candidate.value.partition(":")
    target = importlib.import_module(module_name.strip())
    for part in filter(None, attribute.strip().split(".")):
        target = getattr(target, part)
    return target


def _name_and_version(dist) -> tuple[str, str]:  # noqa: ANN001
    """Name and Version from the METADATA header, without the email parser (it costs start-up time)."""
    if dist is None:
        return "", ""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # end of the header block
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in fields:
            fields[key] = value.strip()
    return fields.get("Name", ""), fields.get("Version", "")


def parse_names(text: str | None) -> list[str] | None:
    """``"skills, mcp"`` -> ``["skills", "mcp"]``; None/absent -> None (meaning: not specified)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def select_plugins(
    installed: Iterable[str],
    requested: list[str] | None,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
) -> list[str]:
    """Decide which installed plugins to load.

    ``requested`` (from ``--plugins`` or ``PANDO_PLUGINS``) wins and must name installed plugins;
    otherwise config ``enabled`` (if given) then minus config ``disabled``; default: all installed.
    """
    available = sorted(installed)
    if requested is not None:
        if requested == ["none"] or requested == []:
            return []
        if requested == ["all"]:
            return available
        unknown = [name for name in requested if name not in available]
        if unknown:
            listing = ", ".join(available) if available else "none"
            raise UsageError(
                f"unknown plugin{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; installed plugins: {listing}"
            )
        return list(dict.fromkeys(requested))
    chosen = [name for name in available if enabled is None or name in enabled]
    if disabled:
        chosen = [name for name in chosen if name not in disabled]
    return chosen


class Plugins:
    """The pluggy plugin manager, the hook callers (``plugins.hooks``) and what the core knows
    about each plugin: its load status and the errors its hooks raised."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("pando")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.generation = 0  # bumped on every (un)registration: hook callers re-read their implementations
        self.kinds = declared_kinds(hookspecs)
        self.hooks = Hooks(self, self.kinds)
        self.pending: set[Any] = set()  # event-hook coroutines scheduled on a running loop
        self.error_file: str | None = None  # where hook errors are kept for `pando plugins` (.pando/)
        self._errors_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------------

    def load(self, selected: list[str], candidates: dict[str, _Candidate] | None = None) -> None:
        """Import and register the selected installed plugins, isolating failures.

        ``candidates``: the result of `installed_plugins` when the caller already has it.
        """
        strict = strict_mode()
        if candidates is None:
            candidates = installed_plugins()
        for name, candidate in sorted(candidates.items()):
            if name not in selected:
                self.infos[name] = PluginInfo(
                    name, candidate.version, candidate.distribution, status="disabled"
                )
        for name in selected:
            candidate = candidates[name]
            info = PluginInfo(name, candidate.version, candidate.distribution)
            self.infos[name] = info
            try:
                module = load_entry_point(candidate)
                self.register(module, name, info=info)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                info.status = "error"
                info.error = f"{type(exc).__name__}: {exc}"
                message = f"pando: plugin {name!r} failed to load: {info.error}"
                if strict:
                    raise PluginLoadError(message) from exc
                print(message, file=sys.stderr)

    def register(self, plugin: Any, name: str, *, info: PluginInfo | None = None, listed: bool = True) -> None:
        """Register a plugin object (module, class instance) under ``name``. ``listed=False``: a part
        of the core that works through hooks (shell hooks), not shown by ``pando plugins``."""
        if self.pm.has_plugin(name):
            raise ValueError(f"duplicate plugin name {name!r}")
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
            for hook_name, spec in self.kinds.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == name:
                        check_implementation(name, hook_name, spec, impl)
        except (pluggy.PluginValidationError, TypeError):
            self.pm.unregister(name=name)
            raise
        self.generation += 1
        if not listed:
            return
        info = info or self.infos.setdefault(name, PluginInfo(name))
        info.status = "loaded"
        info.hooks = sorted(impl_name for impl_name in dir(plugin) if impl_name.startswith("pando_"))
        self.infos[name] = info

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.generation += 1
        self.infos.pop(name, None)

    def list(self) -> list[PluginInfo]:
        return [self.infos[name] for name in sorted(self.infos)]

    def loaded(self) -> dict[str, str]:
        """``{name: version}`` of the plugins loaded in this process."""
        return {info.name: info.version for info in self.list() if info.status == "loaded"}

    # -- hook errors -----------------------------------------------------------------------------

    def record_hook_error(self, plugin: str, hook: str, exc: BaseException) -> None:
        """A plugin's hook raised: log it (with the traceback the first time), count it, keep it."""
        message = f"{type(exc).__name__}: {exc}"
        with self._errors_lock:
            info = self.infos.setdefault(plugin, PluginInfo(plugin))
            entry = info.hook_errors.setdefault(hook, {"count": 0, "last_error": "", "at": 0})
            first = entry["count"] == 0
            entry["count"] += 1
            entry["last_error"] = message
            entry["at"] = int(time.time() * 1000)
        if first:
            log.warning("plugin %r failed in %s: %s", plugin, hook, message, exc_info=exc)
        else:
            log.debug("plugin %r failed in %s again: %s", plugin, hook, message)
        self._keep_errors(plugin, hook, entry)

    def _keep_errors(self, plugin: str, hook: str, entry: dict[str, Any]) -> None:
        """Merge this error into the working directory's error file, if it has a ``.pando/``."""
        path = self.error_file
        if not path or not os.path.isdir(os.path.dirname(path)):
            return
        import json
        from pathlib import Path

        from .fsutil import atomic_write

        with self._errors_lock:
            kept = read_hook_errors(path)
            kept.setdefault(plugin, {})[hook] = dict(entry, pid=os.getpid())
            try:
                atomic_write(Path(path), json.dumps(kept, indent=1).encode("utf-8"))
            except OSError:
                log.debug("cannot keep plugin errors in %s", path, exc_info=True)


def read_hook_errors(path: str | None) -> dict[str, dict[str, Any]]:
    """The hook errors kept in *path*: ``{plugin: {hook: {count, last_error, at, pid}}}``."""
    if not path:
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def build_plugins(
    requested: list[str] | None = None,
    *,
    config_enabled: list[str] | None = None,
    config_disabled: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Plugins:
    """Discover, select and load plugins. ``requested`` None means: not named (``--plugins`` /
    ``PANDO_PLUGINS``), so config ``enabled`` / ``disabled`` decide, else every installed plugin."""
    plugins = Plugins()
    candidates = installed_plugins()
    selected = select_plugins(candidates.keys(), requested, config_enabled, config_disabled)
    plugins.load(selected, candidates)
    for name, obj in (extra or {}).items():
        plugins.register(obj, name)
    return plugins
