"""The one dispatch layer for plugin hooks: how each hook is called, async, isolation, tracing.

Every hookspec in :mod:`pando_core.hookspecs` declares its *kind*:

- ``event``: every implementation is called; results are ignored;
- ``collect``: every implementation is called; the non-None results, in plugin order;
- ``pipeline``: a value is threaded through the implementations in plugin order, each getting
  the value the previous one returned (None keeps it);
- ``first``: the first non-None result.

Call sites name hooks through attributes, never strings: ``plugins.hooks.pando_session_ended(app=...,
session=...)`` from synchronous code, ``await plugins.hooks.pando_rewrite_prompt.acall(...)`` from
async code. "Where is hook X called" is one grep for ``hooks.X``.

An implementation may be a coroutine function (unless its hook says ``sync_only``). From async
code the coroutine is awaited. From synchronous code it is run to completion when no event loop
runs in this thread; when one does, an event hook's coroutine is scheduled on that loop (its
errors isolated like any other), and a collect or pipeline hook's coroutine runs to completion on
a private loop in a worker thread (never ``asyncio.run`` inside a running loop).

Each implementation is called on its own, so one plugin's exception never stops the others: it is
logged (the first time for that plugin and hook with its traceback, later ones at debug level),
counted, and kept as the last error of that plugin and hook (``pando plugins`` shows it). A
pipeline's ``ToolError`` is a deliberate refusal and is passed on, and so is a ``UsageError`` /
``ConfigError`` from any hook (the user's configuration is wrong: pando says so and stops). ``PANDO_STRICT_PLUGINS=1``
re-raises every error. ``PANDO_TRACE_HOOKS=1`` writes every hook call, with each plugin and its
time, to stderr.

Implementations come from pluggy's registry (``HookCaller.get_hookimpls``), but the calling loop is
ours: pluggy's stops at the first exception and cannot await per implementation. For the same
reason pluggy hook wrappers are refused when a plugin registers.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plugins import Plugins

log = logging.getLogger("pando.hooks")

EVENT = "event"
COLLECT = "collect"
PIPELINE = "pipeline"
FIRST = "first"
KINDS = (EVENT, COLLECT, PIPELINE, FIRST)


@dataclass(frozen=True)
class HookKind:
    """How one hook is called (set on its hookspec by :func:`kind`)."""

    kind: str
    value: str | None = None  # pipeline: the argument threaded through
    sync_only: bool = False  # implementations must not be coroutines (called before any loop runs)


def kind(kind: str, *, value: str | None = None, sync_only: bool = False) -> Callable[[Callable], Callable]:
    """Decorate a hookspec with how it is called."""
    if kind not in KINDS:
        raise ValueError(f"unknown hook kind {kind!r}")
    if (kind == PIPELINE) != (value is not None):
        raise ValueError("a pipeline names its value argument, and only a pipeline does")

    def mark(fn: Callable) -> Callable:
        fn.__pando_hook__ = HookKind(kind, value, sync_only)
        return fn

    return mark


def strict_mode() -> bool:
    return os.environ.get("PANDO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def tracing() -> bool:
    return bool(os.environ.get("PANDO_TRACE_HOOKS"))


class HookFailed(Exception):
    """A plugin's hook raised while strict mode was on (``PANDO_STRICT_PLUGINS=1``)."""


@dataclass(frozen=True)
class _Impl:
    plugin: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


def _refusal_types() -> tuple[type[BaseException], ...]:
    from .agent.tools.base import PermissionDenied, ToolError

    return (ToolError, PermissionDenied)


def _user_error_types() -> tuple[type[BaseException], ...]:
    from .errors import UsageError

    return (UsageError,)  # ConfigError included: the user's configuration, not a plugin bug


class HookCaller:
    """Calls one hook on every plugin that implements it."""

    __slots__ = ("name", "spec", "_plugins", "_impls", "_generation")

    def __init__(self, plugins: Plugins, name: str, spec: HookKind) -> None:
        self.name = name
        self.spec = spec
        self._plugins = plugins
        self._impls: tuple[_Impl, ...] = ()
        self._generation = -1

    # -- implementations ---------------------------------------------------------------------------

    def impls(self) -> tuple[_Impl, ...]:
        """The implementations in plugin (registration) order; cached until plugins change."""
        if self._generation != self._plugins.generation:
            caller = getattr(self._plugins.pm.hook, self.name)
            # pluggy keeps implementations in registration order (and calls them last first);
            # plugin order here is registration order: --plugins order, else sorted names
            self._impls = tuple(
                _Impl(impl.plugin_name, impl.function, tuple(impl.argnames)) for impl in caller.get_hookimpls()
            )
            self._generation = self._plugins.generation
        return self._impls

    @property
    def implemented(self) -> bool:
        return bool(self.impls())

    def plugin_names(self) -> list[str]:
        return [impl.plugin for impl in self.impls()]

    # -- calling -------------------------------------------------------------------------------------

    def __call__(self, **kwargs: Any) -> Any:
        """Call from synchronous code (see the module docstring for coroutines)."""
        impls = self.impls()
        spec = self.spec
        if not impls:
            return self._empty(kwargs)
        trace = tracing()
        if spec.kind == PIPELINE:
            value = kwargs[spec.value]
            for impl in impls:
                kwargs[spec.value] = value
                result = self._one(impl, kwargs, trace)
                if result is not None:
                    value = result
            return value
        results = []
        for impl in impls:
            result = self._one(impl, kwargs, trace)
            if result is None:
                continue
            if spec.kind == FIRST:
                return result
            results.append(result)
        if spec.kind == COLLECT:
            return results
        return None

    async def acall(self, **kwargs: Any) -> Any:
        """Call from async code: coroutine implementations are awaited in turn."""
        impls = self.impls()
        spec = self.spec
        if not impls:
            return self._empty(kwargs)
        trace = tracing()
        if spec.kind == PIPELINE:
            value = kwargs[spec.value]
            for impl in impls:
                kwargs[spec.value] = value
                result = await self._one_async(impl, kwargs, trace)
                if result is not None:
                    value = result
            return value
        results = []
        for impl in impls:
            result = await self._one_async(impl, kwargs, trace)
            if result is None:
                continue
            if spec.kind == FIRST:
                return result
            results.append(result)
        return results if spec.kind == COLLECT else None

    def per_plugin(self, **kwargs: Any) -> list[tuple[str, Any]]:
        """A collect hook's non-None results with the name of the plugin that gave each."""
        trace = tracing()
        out = []
        for impl in self.impls():
            result = self._one(impl, kwargs, trace)
            if result is not None:
                out.append((impl.plugin, result))
        return out

    def flat(self, **kwargs: Any) -> list[Any]:
        """A collect hook whose implementations return one item or a list of them: all items."""
        return _flatten(self(**kwargs))

    async def aflat(self, **kwargs: Any) -> list[Any]:
        return _flatten(await self.acall(**kwargs))

    def _empty(self, kwargs: dict[str, Any]) -> Any:
        if self.spec.kind == PIPELINE:
            return kwargs[self.spec.value]
        return [] if self.spec.kind == COLLECT else None

    # -- one implementation ------------------------------------------------------------------------

    def _one(self, impl: _Impl, kwargs: dict[str, Any], trace: bool) -> Any:
        started = time.perf_counter() if trace else 0.0
        try:
            result = impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
            if result is not None and inspect.isawaitable(result):
                result = self._settle(impl, result)
        except BaseException as exc:  # noqa: BLE001 - isolation is the point
            result = self._failed(impl, exc)
        if trace:
            self._trace(impl, started, result)
        return result

    async def _one_async(self, impl: _Impl, kwargs: dict[str, Any], trace: bool) -> Any:
        started = time.perf_counter() if trace else 0.0
        try:
            result = impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:  # noqa: BLE001 - isolation is the point
            result = self._failed(impl, exc)
        if trace:
            self._trace(impl, started, result)
        return result

    def _settle(self, impl: _Impl, awaitable: Any) -> Any:
        """A coroutine returned to a synchronous call site."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            return _run_to_completion(awaitable)
        if self.spec.kind == EVENT:
            task = loop.create_task(self._guarded(impl, awaitable))
            self._plugins.pending.add(task)
            task.add_done_callback(self._plugins.pending.discard)
            return None
        return _run_in_worker_thread(awaitable)

    async def _guarded(self, impl: _Impl, awaitable: Any) -> None:
        try:
            await awaitable
        except BaseException as exc:  # noqa: BLE001
            import asyncio

            if isinstance(exc, asyncio.CancelledError):
                raise
            try:
                self._failed(impl, exc)
            except BaseException:  # noqa: BLE001 - strict mode: nobody awaits this task
                log.error("plugin %r failed in %s (strict mode)", impl.plugin, self.name, exc_info=True)

    def _failed(self, impl: _Impl, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt, SystemExit, CancelledError: not a plugin's failure to hide
        if self.spec.kind == PIPELINE and isinstance(exc, _refusal_types()):
            raise exc
        if isinstance(exc, _user_error_types()):
            raise exc  # a plugin refusing bad configuration or usage: pando stops with that line
        self._plugins.record_hook_error(impl.plugin, self.name, exc)
        if strict_mode():
            raise HookFailed(f"plugin {impl.plugin!r} failed in {self.name}: {type(exc).__name__}: {exc}") from exc
        return None

    def _trace(self, impl: _Impl, started: float, result: Any) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        shown = repr(result)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        sys.stderr.write(f"pando hook {self.name} [{self.spec.kind}] plugin={impl.plugin} {elapsed:.3f} ms -> {shown}\n")


def _flatten(results: list[Any] | None) -> list[Any]:
    items: list[Any] = []
    for result in results or []:
        if isinstance(result, list | tuple):
            items.extend(result)
        elif result is not None:
            items.append(result)
    return items


def _run_to_completion(awaitable: Any) -> Any:
    import asyncio

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


def _run_in_worker_thread(awaitable: Any) -> Any:
    """Run a coroutine to completion on a fresh loop in another thread, blocking this one."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = _run_to_completion(awaitable)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="pando-hook-await", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class Hooks:
    """``plugins.hooks``: one :class:`HookCaller` per hookspec, as attributes."""

    def __init__(self, plugins: Plugins, specs: dict[str, HookKind]) -> None:
        self._callers = {name: HookCaller(plugins, name, spec) for name, spec in specs.items()}
        for name, caller in self._callers.items():
            setattr(self, name, caller)

    def __iter__(self):
        return iter(self._callers.values())

    def get(self, name: str) -> HookCaller:
        return self._callers[name]


def declared_kinds(module: Any) -> dict[str, HookKind]:
    """Every hookspec of *module* and how it is called; a spec without a kind is a bug here."""
    specs = {}
    for name in dir(module):
        if not name.startswith("pando_"):
            continue
        marker = getattr(getattr(module, name), "__pando_hook__", None)
        if marker is None:
            raise TypeError(f"hookspec {name} does not declare its kind (pando_core.hooks.kind)")
        specs[name] = marker
    return specs


def check_implementation(plugin_name: str, hook_name: str, spec: HookKind, impl: Any) -> None:
    """Refuse what the dispatch layer cannot honour, when the plugin registers."""
    if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
        raise TypeError(f"plugin {plugin_name!r}: {hook_name} is a hook wrapper; pando hooks do not support wrappers")
    if spec.sync_only and inspect.iscoroutinefunction(impl.function):
        raise TypeError(f"plugin {plugin_name!r}: {hook_name} must not be async (it is called before any event loop runs)")
