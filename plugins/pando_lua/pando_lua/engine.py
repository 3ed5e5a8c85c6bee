"""Sandboxed Lua engine for pando-lua (lupa, Lua 5.4).

One :class:`LuaEngine` owns one ``lupa.lua54.LuaRuntime`` (driven by its own worker thread) and any
number of scripts.  All calls are serialised by a lock.  With ``hot_reload=True`` the engine itself
runs :meth:`LuaEngine.reload_if_changed` (a cheap ``os.stat`` per script) before each call.  Public API::

    LuaEngine(scripts, *, timeout=1.0, memory_limit=32 MiB, strict=False, helpers=None,
              logger=None, hot_reload=False)
    LuaEngine.from_config(config, *, base_dir=None, helpers=None, logger=None)
    engine.call_filter(name, data, *, context=None, fallback=None) -> dict
    engine.call_hook(hook_name, data) -> dict
    engine.reload_if_changed() -> bool
    engine.defined_hooks() -> list[str]
    engine.load_errors -> dict[str, str];  engine.scripts -> list[Path];  engine.close()
    filter_name(server, direction) -> str;  hook_function_name(name) -> str

Function lookup (per script)
----------------------------
Tool filters: ``call_filter("github-input", args)`` tries ``github-input``, then the underscore form
``github_input``, then ``global-input`` / ``global_input``; ``-output`` likewise.  Lua identifiers cannot
contain ``-``, so a script defines the dashed form as ``_G["github-input"] = function(ctx) ... end``
or the friendlier ``function github_input(ctx) ... end``; both work, the dashed form wins if both
exist.  Use :func:`filter_name` to build the name from an MCP server name (``_`` and ``.`` become ``-``,
like Go).  ``call_filter(name, data, fallback="builtin")`` also tries ``builtin-input`` /
``builtin_input`` before the global ones (pando-lua's wiring calls ``"<tool name>-input"`` with that
fallback for built-in and plugin tools; ``ctx.tool_name`` tells which tool).  Hooks: ``call_hook("system_prompt", data)`` (or
``"hook_system_prompt"``) tries ``hook_system_prompt`` then ``hook_global``.  A script without a
matching function leaves the data unchanged.  With several scripts, they run in order as a chain,
each one seeing the previous one's output; a failing script (non-strict) is skipped.

The ``ctx`` table
-----------------
The data's fields are at the top level of ``ctx`` **and** the same table is mirrored under
``ctx.parameters`` (Go compatibility; for ``-output`` filters also under ``ctx.result``, unless the
caller passes the tool arguments as ``context["parameters"]``).  Context fields (``server_name``,
``tool_name``, ... given by the caller; ``server_name`` is derived from the filter name if absent;
``hook_name`` for hooks) are added at the top level and win over data fields of the same name (those
stay reachable under ``ctx.parameters``).  Return value:

* ``nil`` -> data unchanged;
* ``ctx`` itself -> the data is rebuilt key by key: a top-level field changed by the script wins,
  otherwise a change made through ``ctx.parameters``/``ctx.result`` (or a table assigned to it),
  otherwise the old value; context fields are not copied into the data;
* any other table (e.g. ``ctx.parameters`` or a fresh table) -> becomes the whole new data;
* anything else -> error ("must return a table or nil").

When the result equals the input (as seen by Lua), the very same ``data`` object is returned, so
``result is data`` tells "not modified".

Value conversion
----------------
Python -> Lua: ``dict`` (string keys only) -> table; ``list``/``tuple`` -> sequence 1..n marked as an
array (so it comes back as a list even when emptied); ``str`` -> UTF-8 string; ``bytes`` -> string as
is; ``int`` -> Lua integer (outside int64 -> conversion error); ``float`` -> float; ``bool`` -> boolean;
``None`` as a dict value -> the key is absent (nil), ``None`` in a list -> ``json.null``, other types ->
conversion error.  Lua -> Python: a table whose keys are exactly 1..n (n >= 1) -> list; a table marked
with ``json.array`` (or from a Python list / JSON array) -> list, even empty; the empty unmarked table
-> ``{}``; other tables -> dict (integer/float keys become strings: ``{[5]="x"}`` -> ``{"5": "x"}``;
boolean/table/function keys -> error); strings -> ``str`` (invalid UTF-8 replaced by U+FFFD);
integers -> ``int``; floats -> ``float`` (``3.0`` stays float); ``nil`` and ``json.null`` -> ``None``;
functions, coroutines, userdata -> conversion error.  Nesting deeper than 100 (or cycles) -> error.
``json.decode`` maps JSON ``null`` to ``json.null`` everywhere (objects and arrays).  A dict entry whose
value is None is invisible to Lua and is dropped if the script changes the data.

Sandbox
-------
Scripts are compiled with ``load(code, "@name", "t", env)`` (text only: precompiled bytecode is
refused) into a fresh environment with only: assert error ipairs next pairs rawequal rawget rawlen
select tonumber tostring type unpack _VERSION, pcall/xpcall (re-raise a timeout), getmetatable (tables
only), setmetatable (no ``__gc``), collectgarbage("count"|"collect"|"step"), load (text only, sandbox
env), copies of string (no dump), table, math, utf8, coroutine, ``os.time/clock/date/difftime``,
``require "json"`` (and a ``json`` global), ``print`` (-> log), and the ``pando_*`` helpers.  No io, os
others, debug, package, dofile, loadfile, python.  The runtime has ``register_eval=False``,
``register_builtins=False``, an attribute filter denying every Python attribute, and the global
``python`` table removed; helpers are Lua closures over Python callables that catch every exception,
so no Python object (exceptions included) ever reaches script code.

Limits
------
``memory_limit`` (lupa ``max_memory``, whole runtime) -> "memory limit exceeded".  Time: a count hook
(every 1000 VM instructions, installed by trusted code on the main thread and on every coroutine the
script creates) checks a wall-clock deadline (``timeout`` per function call and for a script's
top-level code); once expired it fires on every instruction and pcall/xpcall/coroutine.resume
re-raise, so ``pcall`` loops cannot swallow it.  String/table functions that can be slow on big
inputs check the deadline before starting; time spent inside a helper counts too.  Stack overflows
are ordinary errors.  Lua runs on one worker thread per engine; if a single C call cannot be
interrupted (a pathological pattern such as ``("a"):rep(1e4):find(".-.-.-b")``), the caller gets its
answer after ``timeout + STUCK_GRACE`` (a timeout failure), the runtime is abandoned to that thread
(which exits when the call eventually returns, burning one core meanwhile), a new runtime is built
from the last good version of every script, and the culprit script stays disabled until its file
changes.  Note: count hooks make pure-Lua loops about 2x slower in Lua 5.4.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lupa import lua54

from pando_core.agent.tools.base import ToolError

from .config import DEFAULT_MEMORY_LIMIT
from .helpers import HelperRefusal, LuaHelpers

if TYPE_CHECKING:
    from .config import LuaConfig

__all__ = [
    "LuaEngine",
    "LuaHelpers",
    "PandoLuaError",
    "LuaFilterError",
    "LuaTimeoutError",
    "LuaMemoryLimitError",
    "LuaLoadError",
    "filter_name",
    "hook_function_name",
    "BUILTIN_SERVER",
]

log = logging.getLogger("pando_lua")

BUILTIN_SERVER = "builtin"
MAX_DEPTH = 100
MAX_SCRIPT_SIZE = 4 * 1024 * 1024
#: Extra seconds (beyond the Lua deadlines) before a call is considered stuck in a C function.
STUCK_GRACE = 2.0
_LuaError = lua54.LuaError
_LuaMemoryError = lua54.LuaMemoryError
_lua_type = lua54.lua_type
_INT_MIN = lua54.LUA_MININTEGER
_INT_MAX = lua54.LUA_MAXINTEGER
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class PandoLuaError(Exception):
    """Base class of pando-lua errors."""


class LuaLoadError(PandoLuaError):
    """One or more scripts failed to load (strict mode).  ``errors`` maps script path -> message."""

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})


class LuaFilterError(PandoLuaError, ToolError):
    """A filter/hook call failed in strict mode.  Also a core ``ToolError``, so raised from a hook
    it refuses the operation (its message goes to the model).

    ``kind`` is one of "error" (runtime error in the script), "timeout", "memory", "return" (bad
    return value) or "conversion" (data that cannot cross the Python/Lua boundary).
    """

    def __init__(
        self, message: str, *, script: str | None = None, function: str | None = None, kind: str = "error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.script = script
        self.function = function
        self.kind = kind


class LuaTimeoutError(LuaFilterError):
    """The call exceeded the time limit (strict mode)."""


class LuaMemoryLimitError(LuaFilterError):
    """The runtime exceeded its memory limit (strict mode)."""


class _ConversionError(Exception):
    pass


class _CallFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Stuck(Exception):
    """The worker did not answer in time: it is stuck inside one long C call."""


_ERROR_CLASSES = {"timeout": LuaTimeoutError, "memory": LuaMemoryLimitError}


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
def filter_name(server: str, direction: str) -> str:
    """``filter_name("my_server.x", "input") == "my-server-x-input"`` (Go's normalisation)."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', not {direction!r}")
    return f"{server.replace('_', '-').replace('.', '-')}-{direction}"


def hook_function_name(name: str) -> str:
    """``"system_prompt"`` / ``"hook_system_prompt"`` / ``"system-prompt"`` -> ``"hook_system_prompt"``."""
    name = name.strip().replace("-", "_")
    if not name:
        raise ValueError("empty hook name")
    return name if name.startswith("hook_") else f"hook_{name}"


def split_filter(name: str) -> tuple[str, str]:
    """(tool or server, direction) of a filter name: ``"bash-input"`` -> ``("bash", "input")``
    (``_`` works as the separator too); ValueError for anything else."""
    for direction in ("input", "output"):
        for sep in ("-", "_"):
            suffix = f"{sep}{direction}"
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)], direction
    raise ValueError(f"filter name must end with '-input' or '-output', got {name!r}")


def _is_hook_function(name: str) -> bool:
    return name.startswith("hook_") or name.endswith(("-input", "-output", "_input", "_output"))


# ---------------------------------------------------------------------------------------------
# Trusted bootstrap code (runs with the full standard library, before any user code)
# ---------------------------------------------------------------------------------------------
_BOOT = rb"""
local now_py, json_encode_py, json_decode_py, get_config_py, git_status_py, load_file_py,
      list_tools_py, list_mcp_py, log_py = ...

local G = _G
local sethook, dgetmetatable = debug.sethook, debug.getmetatable
local clock = os.clock
local pcall, xpcall, error, type, next, rawequal, rawget, rawlen, select, tostring =
      pcall, xpcall, error, type, next, rawequal, rawget, rawlen, select, tostring
local setmetatable, getmetatable, load, collectgarbage = setmetatable, getmetatable, load, collectgarbage
local tonumber = tonumber
local tconcat = table.concat
local co_create, co_resume, co_yield, co_status, co_isyieldable, co_running, co_close =
      coroutine.create, coroutine.resume, coroutine.yield, coroutine.status,
      coroutine.isyieldable, coroutine.running, coroutine.close
local os_time, os_clock, os_date, os_difftime = os.time, os.clock, os.date, os.difftime

local COUNT = 1000          -- VM instructions between hook runs
local WALL_EVERY = 0.002    -- CPU seconds between wall-clock checks
local TIMEOUT = "pando-lua: time limit exceeded"

local guard = { aborted = false }
local deadline, next_wall = 0, 0

local hook
hook = function()
  if guard.aborted then error(TIMEOUT, 0) end
  local c = clock()
  if c >= next_wall then
    next_wall = c + WALL_EVERY
    if now_py() > deadline then
      guard.aborted = true
      sethook(hook, "", 1)
      error(TIMEOUT, 0)
    end
    sethook(hook, "", COUNT)
  end
end

local function after_protected(ok, ...)
  if guard.aborted then error(TIMEOUT, 0) end
  return ok, ...
end
local function safe_pcall(...) return after_protected(pcall(...)) end
-- A timeout raised from inside the hook runs the message handler with hooks disabled, so the
-- user's handler must not run once the call is aborted.
local function safe_xpcall(f, handler, ...)
  local function guarded_handler(e)
    if guard.aborted then return e end
    return handler(e)
  end
  return after_protected(xpcall(f, guarded_handler, ...))
end
local function safe_resume(...) return after_protected(co_resume(...)) end
local function safe_close(...) return after_protected(co_close(...)) end
-- Lua-level hooks are per coroutine (not inherited), so every coroutine gets the hook explicitly.
local function safe_create(f)
  local co = co_create(f)
  sethook(co, hook, "", COUNT)
  return co
end
local function wrap_result(co, ok, ...)
  if guard.aborted then error(TIMEOUT, 0) end
  if ok then return ... end
  local err = ...
  if co_status(co) == "dead" then co_close(co) end
  error(err, 0)
end
local function safe_wrap(f)
  local co = safe_create(f)
  return function(...) return wrap_result(co, co_resume(co, ...)) end
end

local function finish(ok, ...)
  if ok then return ... end
  if guard.aborted then error(TIMEOUT, 0) end
  error((...), 2)
end
local function bridge(pyfn)
  return function(...) return finish(pyfn(...)) end
end

local ARRAY_MT = { __metatable = false, __name = "json.array" }
local NULL = setmetatable({}, {
  __metatable = false,
  __name = "json.null",
  __newindex = function() error("json.null is read-only", 2) end,
  __tostring = function() return "null" end,
})

local json_encode, json_decode = bridge(json_encode_py), bridge(json_decode_py)
local function json_array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("json.array: expected a table, got " .. type(t), 2) end
  return setmetatable(t, ARRAY_MT)
end

local function copy(t)
  local r = {}
  for k, v in next, t do r[k] = v end
  return r
end

local safe_string = {}
for k, v in next, string do
  if k ~= "dump" then safe_string[k] = v end
end
local safe_table, safe_math, safe_utf8 = copy(table), copy(math), copy(utf8)

-- The count hook cannot see time spent inside one C call, so library functions that can take
-- long on big inputs check the deadline first (only when the input is big: hot loops on small
-- strings stay cheap).  This bounds the overshoot to one such call.
local BIG = 65536
local function check_deadline()
  if guard.aborted then error(TIMEOUT, 0) end
  if now_py() > deadline then
    guard.aborted = true
    error(TIMEOUT, 0)
  end
end
local function big_string_guard(f)
  return function(s, ...)
    if type(s) == "string" and #s >= BIG then check_deadline() end
    return f(s, ...)
  end
end
for _, name in next, { "find", "match", "gmatch", "gsub", "upper", "lower", "reverse", "byte", "format" } do
  safe_string[name] = big_string_guard(string[name])
end
local s_rep = string.rep
-- Counts are coerced the way the C functions coerce them ("1e15" is the number 1e15) before the
-- checks, or a string count would pass them and loop for ever inside one C call.
safe_string.rep = function(s, n, sep)
  local count = tonumber(n)
  if count and count > 0 then
    local unit = (type(s) == "string" and #s or 1) + (sep == nil and 0 or (type(sep) == "string" and #sep or 1))
    if unit == 0 then return "" end  -- ("").rep(1e15) would loop 1e15 times inside C
    if count * (unit + 1) >= BIG then check_deadline() end
  end
  return s_rep(s, n, sep)
end
local t_move = table.move
safe_table.move = function(a1, f, e, t, a2)
  local first, last = tonumber(f), tonumber(e)
  if first and last and last - first >= 1e7 then
    error("table.move: range too large", 2)  -- one C loop; no real table is that big under the memory cap
  end
  return t_move(a1, f, e, t, a2)
end
local t_concat, t_sort = table.concat, table.sort
safe_table.concat = function(t, ...)
  if type(t) == "table" and rawlen(t) >= 4096 then check_deadline() end
  return t_concat(t, ...)
end
safe_table.sort = function(t, ...)
  if type(t) == "table" and rawlen(t) >= 4096 then check_deadline() end
  return t_sort(t, ...)
end
dgetmetatable("").__index = safe_string

local function safe_getmetatable(o)
  if type(o) ~= "table" then return nil end
  return getmetatable(o)
end
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in pando-lua scripts", 2)
  end
  return setmetatable(t, mt)
end
local function safe_collectgarbage(opt)
  if opt == nil then opt = "collect" end
  if opt == "count" or opt == "collect" or opt == "step" then return collectgarbage(opt) end
  error("collectgarbage('" .. tostring(opt) .. "') is not allowed in pando-lua scripts", 2)
end

local BASE = { "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen", "select",
               "tonumber", "tostring", "type", "_VERSION" }
local base = {}
for i = 1, #BASE do base[BASE[i]] = G[BASE[i]] end
local helpers = {
  pando_get_config = bridge(get_config_py),
  pando_get_git_status = bridge(git_status_py),
  pando_load_file = bridge(load_file_py),
  pando_list_tools = bridge(list_tools_py),
  pando_list_mcp_servers = bridge(list_mcp_py),
}

local function make_env(label)
  local env = {}
  for k, v in next, base do env[k] = v end
  env.pcall, env.xpcall = safe_pcall, safe_xpcall
  env.getmetatable, env.setmetatable = safe_getmetatable, safe_setmetatable
  env.collectgarbage = safe_collectgarbage
  env.unpack = safe_table.unpack
  env.string, env.table, env.math, env.utf8 = copy(safe_string), copy(safe_table), copy(safe_math), copy(safe_utf8)
  env.os = { time = os_time, clock = os_clock, date = os_date, difftime = os_difftime }
  env.coroutine = { create = safe_create, resume = safe_resume, wrap = safe_wrap, yield = co_yield,
                    status = co_status, isyieldable = co_isyieldable, running = co_running,
                    close = safe_close }
  local json = { encode = json_encode, decode = json_decode, null = NULL, array = json_array }
  env.json = json
  env.require = function(name)
    if name == "json" then return json end
    error("module '" .. tostring(name) .. "' not found (pando-lua scripts can only require \"json\")", 2)
  end
  env.load = function(chunk, chunkname, mode, e)
    if e == nil then e = env end
    return load(chunk, chunkname, "t", e)
  end
  for k, v in next, helpers do env[k] = v end
  env.pando_log = function(level, msg)
    if msg == nil then msg = "" end
    return finish(log_py(label, tostring(level), tostring(msg)))
  end
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    return finish(log_py(label, "info", tconcat(parts, "\t")))
  end
  env._G = env
  return env
end

local function errstr(e)
  if type(e) == "string" then return e end
  local ok, s = pcall(tostring, e)
  if ok and type(s) == "string" then return s end
  return "(error object is a " .. type(e) .. " value)"
end

local function merge(ctx, data, snap, extra, m1, m2)
  local reserved = {}
  if extra ~= nil then for k in next, extra do reserved[k] = true end end
  local mir = data
  if m1 ~= nil then
    reserved[m1] = true
    local t = rawget(ctx, m1)
    if type(t) == "table" and not rawequal(t, data) then mir = t end
  end
  if m2 ~= nil then
    reserved[m2] = true
    local t = rawget(ctx, m2)
    if type(t) == "table" and not rawequal(t, data) then mir = t end
  end
  local keys = {}
  for k in next, snap do keys[k] = true end
  for k in next, mir do keys[k] = true end
  for k in next, ctx do
    if not reserved[k] then keys[k] = true end
  end
  local out = {}
  for k in next, keys do
    local orig = rawget(snap, k)
    local v, top_changed = orig, false
    if not reserved[k] then
      local top = rawget(ctx, k)
      if not rawequal(top, orig) then v, top_changed = top, true end
    end
    if not top_changed then
      local mv = rawget(mir, k)
      if not rawequal(mv, orig) then v = mv end
    end
    out[k] = v
  end
  return out
end

-- Runs fn(ctx) under the deadline. Returns status ("ok"|"nil"|"type"|"error"), payload.
local function invoke(fn, dl, data, extra, m1, m2)
  deadline = dl
  guard.aborted = false
  next_wall = clock() + WALL_EVERY
  local ctx, snap
  if data ~= nil then
    ctx, snap = {}, {}
    for k, v in next, data do ctx[k] = v; snap[k] = v end
    if extra ~= nil then for k, v in next, extra do ctx[k] = v end end
    if m1 ~= nil then ctx[m1] = data end
    if m2 ~= nil then ctx[m2] = data end
  end
  sethook(hook, "", COUNT)
  local ok, res = pcall(fn, ctx)
  local status, out
  if not ok then
    status, out = "error", errstr(res)
  elseif res == nil then
    status = "nil"
  elseif type(res) ~= "table" then
    status, out = "type", type(res)
  elseif data ~= nil and rawequal(res, ctx) then
    status, out = "ok", merge(ctx, data, snap, extra, m1, m2)
  else
    status, out = "ok", res
  end
  sethook()
  return status, out
end

local function resolve(env, ...)
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    local f = rawget(env, name)
    if type(f) == "function" then return f, name end
  end
  return nil, nil
end

local function classify(t)
  if rawequal(t, NULL) then return "null" end
  if rawequal(dgetmetatable(t), ARRAY_MT) then return "array" end
  return "table"
end

local function compile(code, chunkname, env)
  local f, err = load(code, chunkname, "t", env)
  return f, err
end

for _, name in next, { "python", "debug", "io", "os", "package", "require", "dofile", "loadfile", "load",
                       "collectgarbage" } do
  G[name] = nil
end

return {
  invoke = invoke, resolve = resolve, classify = classify, compile = compile, make_env = make_env,
  guard = guard, sethook = sethook, setmetatable = setmetatable, NULL = NULL, ARRAY_MT = ARRAY_MT,
}
"""


def _deny_attribute(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("pando-lua: access to Python attributes is not allowed")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _lua_error_text(exc: BaseException) -> str:
    msg = _text(exc.args[0]) if exc.args else str(exc)
    return msg.split("\nstack traceback:", 1)[0].strip() or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Worker thread: every Lua operation runs here, so a caller can give up on a call that is stuck
# inside one long C function (which no hook can interrupt) and the engine can start afresh.
# ---------------------------------------------------------------------------------------------
class _Job:
    __slots__ = ("fn", "args", "ok", "value", "done")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.ok = False
        self.value: Any = None
        self.done = threading.Lock()
        self.done.acquire()


class _Worker:
    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=_worker_loop, args=(self._queue,), name=name, daemon=True)
        self._thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, timeout: float | None, fn: Callable[..., Any], *args: Any) -> Any:
        if self.is_current():  # re-entrant use from a helper
            return fn(*args)
        job = _Job(fn, args)
        self._queue.put(job)
        if not job.done.acquire(timeout=-1 if timeout is None else timeout):
            raise _Stuck()
        if job.ok:
            return job.value
        raise job.value

    def stop(self) -> None:
        self._queue.put(None)


def _worker_loop(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            job.value = job.fn(*job.args)
            job.ok = True
        except BaseException as e:  # handed to the caller
            job.value = e
        finally:
            job.fn = job.args = None  # type: ignore[assignment]
            job.done.release()
        del job


# ---------------------------------------------------------------------------------------------
# One Lua state with its trusted functions and the Python<->Lua conversion
# ---------------------------------------------------------------------------------------------
class _Runtime:
    def __init__(
        self, timeout: float, memory_limit: int | None, helpers: LuaHelpers, logger: logging.Logger
    ) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.helpers = helpers
        self.logger = logger
        self.deadline = 0.0
        self.pending: BaseException | None = None
        self.lua = lua54.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attribute,
            unpack_returned_tuples=True,
            max_memory=memory_limit,
        )
        bindings = helpers.bindings()
        try:
            loader = self.lua.eval(
                b"function(code, ...) return assert(load(code, '=[pando-lua]', 't'))(...) end"
            )
            boot = loader(
                _BOOT,
                time.monotonic,
                self._bridge("json.encode", self._json_encode),
                self._bridge("json.decode", self._json_decode),
                self._bridge("pando_get_config", bindings["pando_get_config"]),
                self._bridge("pando_get_git_status", bindings["pando_get_git_status"]),
                self._bridge("pando_load_file", bindings["pando_load_file"]),
                self._bridge("pando_list_tools", bindings["pando_list_tools"]),
                self._bridge("pando_list_mcp_servers", bindings["pando_list_mcp_servers"]),
                self._log_bridge,
            )
        except _LuaError as e:
            raise LuaLoadError(f"lua: cannot initialise the Lua runtime: {_lua_error_text(e)}") from None
        self._invoke = boot[b"invoke"]
        self.resolve = boot[b"resolve"]
        self._classify = boot[b"classify"]
        self._compile = boot[b"compile"]
        self._make_env = boot[b"make_env"]
        self._guard = boot[b"guard"]
        self._sethook = boot[b"sethook"]
        self._setmetatable = boot[b"setmetatable"]
        self._null = boot[b"NULL"]
        self._array_mt = boot[b"ARRAY_MT"]
        self._table_from = self.lua.table_from

    # -- running ---------------------------------------------------------------------------------
    def load_script(self, label: str, code: bytes) -> Any:
        """Compile and run a script's top level in a fresh env; return the env or raise _CallFailed."""
        name = label.encode("utf-8", "surrogateescape")
        try:
            env = self._make_env(name)
            fn, err = self._compile(code, b"@" + name, env)
        except _LuaMemoryError:
            self._after_memory_error()
            raise _CallFailed("memory", self._memory_message()) from None
        if fn is None:
            raise _CallFailed("error", _text(err))
        self._run(fn, None, None, None, None)
        return env

    def dispatch(
        self,
        steps: list[tuple[Any, Any]],
        names: tuple[bytes, ...],
        data: Any,
        extra: dict[str, Any],
        m1: bytes | None,
        m2: bytes | None,
        strict: bool,
        progress: list[Any],
    ) -> tuple[Any, list[tuple[Any, str, _CallFailed]]]:
        """Run the chain over (script, env) pairs; returns (data, failures)."""
        failures: list[tuple[Any, str, _CallFailed]] = []
        current = data
        for script, env in steps:
            fn, fname = self.resolve(env, *names)
            if fn is None:
                continue
            fname_s = _text(fname)
            progress[:] = [script, fname_s]
            try:
                current = self._call_one(fn, current, extra, m1, m2)
            except _CallFailed as failure:
                failures.append((script, fname_s, failure))
            except _LuaError as e:  # defensive: any other error of the Lua runtime
                failures.append((script, fname_s, _CallFailed("error", _lua_error_text(e))))
            else:
                continue
            if strict:
                break
        progress[:] = []
        return current, failures

    def _call_one(self, fn: Any, data: Any, extra: dict[str, Any], m1: bytes | None, m2: bytes | None) -> Any:
        try:
            data_tbl = self.to_lua(data, 0, False)
            extra_tbl = self.to_lua(extra, 0, False)
        except _ConversionError as e:
            raise _CallFailed("conversion", f"cannot pass data to Lua: {e}") from None
        except _LuaMemoryError:
            self._after_memory_error()
            raise _CallFailed("memory", self._memory_message()) from None
        status, out = self._run(fn, data_tbl, extra_tbl, m1, m2)
        if status == b"nil":
            return data
        if status == b"type":
            raise _CallFailed("return", f"must return a table or nil, got a {_text(out)}")
        try:
            result = self.from_lua(out, 0)
        except _ConversionError as e:
            raise _CallFailed("conversion", f"cannot convert the returned table: {e}") from None
        if not isinstance(result, dict):
            raise _CallFailed("return", "must return a table with named fields, got an array")
        if _same(data, result):
            return data
        return result

    def _run(
        self, fn: Any, data_tbl: Any, extra_tbl: Any, m1: bytes | None, m2: bytes | None
    ) -> tuple[bytes, Any]:
        deadline = time.monotonic() + self.timeout
        self.deadline = deadline
        self.pending = None
        try:
            status, out = self._invoke(fn, deadline, data_tbl, extra_tbl, m1, m2)
        except _LuaMemoryError:
            self._sethook()
            self._after_memory_error()
            self._reraise_pending()
            raise _CallFailed("memory", self._memory_message()) from None
        except _LuaError as e:
            self._sethook()
            self._reraise_pending()
            if self._guard[b"aborted"]:
                raise _CallFailed("timeout", self._timeout_message()) from None
            raise _CallFailed("error", _lua_error_text(e)) from None
        self._reraise_pending()
        if status == b"error":
            if self._guard[b"aborted"]:
                raise _CallFailed("timeout", self._timeout_message())
            message = _text(out)
            if message == "not enough memory":
                self._after_memory_error()
                raise _CallFailed("memory", self._memory_message())
            raise _CallFailed("error", message)
        return status, out

    def _reraise_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            raise pending

    def _timeout_message(self) -> str:
        return f"timed out after {self.timeout:g}s"

    def _memory_message(self) -> str:
        return f"memory limit exceeded (limit {self.memory_limit} bytes)"

    def _after_memory_error(self) -> None:
        try:
            self.lua.gccollect()
        except Exception:  # pragma: no cover - best effort
            pass

    def defined_functions(self, env: Any) -> list[str]:
        return [_text(k) for k, v in env.items() if type(k) is bytes and _lua_type(v) == "function"]

    def memory_used(self) -> int:
        return int(self.lua.get_memory_used())

    # -- helper bridges --------------------------------------------------------------------------
    def _bridge(self, label: str, impl: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
        """Wrap a Python callable for Lua: returns (True, value) / (True, nil, message) / (False, error)."""

        def bridge(*args: Any) -> tuple[Any, ...]:
            try:
                result = impl(*[self.from_lua(a, 0) for a in args])
                if time.monotonic() > self.deadline:
                    self._guard[b"aborted"] = True
                    return (False, b"pando-lua: time limit exceeded")
                return (True, self.to_lua(result, 0, False))
            except HelperRefusal as e:
                return (True, None, str(e).encode("utf-8", "surrogatepass"))
            except Exception as e:
                return (False, f"{label}: {e or type(e).__name__}".encode("utf-8", "surrogatepass"))
            except BaseException as e:  # SystemExit & co: unwind the script, re-raise afterwards
                self.pending = e
                self._guard[b"aborted"] = True
                return (False, b"pando-lua: interrupted")

        return bridge

    def _log_bridge(self, label: bytes, level: bytes, message: bytes) -> tuple[Any, ...]:
        try:
            script, lvl, msg = _text(label), _text(level).lower(), _text(message)
            custom = self.helpers.log
            if custom is not None:
                custom(lvl, f"{script}: {msg}")
            else:
                self.logger.log(_LEVELS.get(lvl, logging.INFO), "lua[%s]: %s", script, msg)
            return (True,)
        except Exception as e:
            return (False, f"pando_log: {e}".encode("utf-8", "surrogatepass"))
        except BaseException as e:
            self.pending = e
            self._guard[b"aborted"] = True
            return (False, b"pando-lua: interrupted")

    @staticmethod
    def _json_encode(value: Any = None, indent: Any = None) -> bytes:
        import json

        if indent is not None and (type(indent) is not int or indent < 0):
            raise ValueError("indent must be a non-negative integer")
        separators = None if indent else (",", ":")
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators
        ).encode("utf-8", "surrogatepass")

    @staticmethod
    def _json_decode(text: Any = None) -> _JsonValue:
        import json

        if not isinstance(text, str):
            raise ValueError(f"expected a string, got {type(text).__name__}")
        return _JsonValue(json.loads(text))

    # -- conversion ------------------------------------------------------------------------------
    def to_lua(self, v: Any, depth: int, nulls: bool) -> Any:
        t = type(v)
        if t is str:
            return v.encode("utf-8", "surrogatepass")
        if t is int:
            if _INT_MIN <= v <= _INT_MAX:
                return v
            raise _ConversionError(f"integer {v} does not fit in a Lua integer (64 bit)")
        if t is float or t is bool or t is bytes:
            return v
        if v is None:
            return self._null if nulls else None
        if t is _JsonValue:
            return self.to_lua(v.value, depth, True)
        if depth >= MAX_DEPTH:
            raise _ConversionError(f"data nested deeper than {MAX_DEPTH} levels (or cyclic)")
        if t is dict or isinstance(v, Mapping):
            items: dict[bytes, Any] = {}
            null = self._null
            for k, val in v.items():
                if isinstance(k, str):
                    kb = k.encode("utf-8", "surrogatepass")
                else:
                    raise _ConversionError(f"dict keys must be strings, got {type(k).__name__} {k!r}")
                if val is None:
                    if nulls:
                        items[kb] = null
                    continue
                items[kb] = self.to_lua(val, depth + 1, nulls)
            return self._table_from(items)
        if (
            t is list
            or t is tuple
            or (isinstance(v, Sequence) and not isinstance(v, str | bytes | bytearray))
        ):
            null = self._null
            tbl = self._table_from([null if x is None else self.to_lua(x, depth + 1, nulls) for x in v])
            self._setmetatable(tbl, self._array_mt)
            return tbl
        if isinstance(v, int):  # an int subclass (bool cannot be subclassed: handled above)
            return self.to_lua(int(v), depth, nulls)
        if isinstance(v, float):
            return float(v)
        if isinstance(v, str):
            return str(v).encode("utf-8", "surrogatepass")
        if isinstance(v, bytearray | memoryview):
            return bytes(v)
        raise _ConversionError(f"cannot convert a Python {t.__name__} to Lua")

    def from_lua(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t is bytes:
            return v.decode("utf-8", "replace")
        if v is None or t is int or t is float or t is bool:
            return v
        lt = _lua_type(v)
        if lt != "table":
            if lt is None:
                raise _ConversionError(f"cannot convert a Python {t.__name__} object")
            if "Coroutine" in t.__name__ or lt == "thread":
                lt = "coroutine"
            raise _ConversionError(f"cannot convert a Lua {lt}")
        if depth >= MAX_DEPTH:
            raise _ConversionError(f"table nested deeper than {MAX_DEPTH} levels (or cyclic)")
        items = list(v.items())
        if not items:
            kind = self._classify(v)
            if kind == b"null":
                return None
            return [] if kind == b"array" else {}
        n = len(items)
        is_array = True
        for k, _ in items:
            if type(k) is not int or k < 1 or k > n:
                is_array = False
                break
        d = depth + 1
        if is_array:
            out_list: list[Any] = [None] * n
            for k, val in items:
                out_list[k - 1] = self.from_lua(val, d)
            return out_list
        out: dict[str, Any] = {}
        for k, val in items:
            tk = type(k)
            if tk is bytes:
                key = k.decode("utf-8", "replace")
            elif tk is int:
                key = str(k)
            elif tk is float:
                key = repr(k) if k == k else "nan"
            else:
                raise _ConversionError(
                    f"table keys must be strings or numbers, got a {_lua_type(k) or tk.__name__}"
                )
            try:
                out[key] = self.from_lua(val, d)
            except _ConversionError as e:
                raise _ConversionError(f"{key}: {e}") from None
        return out


class _JsonValue:
    """Marks a decoded JSON value: its nulls become json.null (also in objects)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(eq=False)
class _Script:
    path: Path
    label: str
    code: bytes | None = None  # source of the last good version
    env: Any = None  # its env table in the current runtime, or None
    sig: tuple[int, int, int] | None = None  # stat signature of the last load attempt
    error: str | None = None  # error of the last load attempt
    disabled: bool = False  # stuck in a C call: off until the file changes


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------
def _stop_workers(box: list[_Worker | None]) -> None:
    worker = box[0]
    box[0] = None
    if worker is not None:
        worker.stop()


class LuaEngine:
    """Runs Lua filters and hooks in a sandbox.  Thread-safe (calls are serialised)."""

    def __init__(
        self,
        scripts: Sequence[str | os.PathLike[str]],
        *,
        timeout: float = 1.0,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        strict: bool = False,
        helpers: LuaHelpers | None = None,
        logger: logging.Logger | None = None,
        hot_reload: bool = False,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if memory_limit is not None and memory_limit <= 0:
            raise ValueError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")
        self._timeout = float(timeout)
        self._memory_limit = memory_limit
        self._strict = bool(strict)
        self._hot_reload = bool(hot_reload)
        self._logger = logger or log
        self._helpers = helpers or LuaHelpers()
        self._lock = threading.RLock()
        self._closed = False
        self._name_cache: dict[
            tuple[str, ...], tuple[tuple[bytes, ...], bytes | None, bytes | None, str]
        ] = {}
        self._box: list[_Worker | None] = [None]
        self._finalizer = weakref.finalize(self, _stop_workers, self._box)
        self._worker: _Worker
        self._rt: _Runtime
        self._start_runtime()

        self._scripts: list[_Script] = []
        errors: dict[str, str] = {}
        for raw in scripts:
            path = Path(os.fspath(raw))
            script = _Script(path=path, label=path.name)
            self._scripts.append(script)
            err = self._load(script)
            if err is not None:
                errors[str(path)] = err
                if not self._strict:
                    self._logger.warning("lua: %s: failed to load, passing data through: %s", path, err)
        if errors and self._strict:
            self.close()
            lines = [f"lua: {p}: {e}" for p, e in errors.items()]
            raise LuaLoadError("\n".join(lines), errors)

    @classmethod
    def from_config(
        cls,
        config: LuaConfig,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        helpers: LuaHelpers | None = None,
        logger: logging.Logger | None = None,
    ) -> LuaEngine:
        """Build an engine from a :class:`LuaConfig`; relative script paths are resolved against
        ``base_dir`` (default: the helpers' workdir, else the current directory), ``~`` is expanded."""
        base = Path(os.fspath(base_dir)) if base_dir is not None else None
        if base is None and helpers is not None and helpers.workdir is not None:
            base = Path(os.fspath(helpers.workdir))
        paths = []
        for s in config.scripts:
            p = Path(s).expanduser()
            if not p.is_absolute() and base is not None:
                p = base / p
            paths.append(p)
        return cls(
            paths,
            timeout=config.timeout,
            memory_limit=config.memory_limit,
            strict=config.strict,
            helpers=helpers,
            logger=logger,
            hot_reload=config.hot_reload,
        )

    # -- properties ------------------------------------------------------------------------------
    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def strict(self) -> bool:
        return self._strict

    @property
    def hot_reload(self) -> bool:
        return self._hot_reload

    @property
    def scripts(self) -> list[Path]:
        return [s.path for s in self._scripts]

    @property
    def load_errors(self) -> dict[str, str]:
        """Script path -> why it is not (or not in its latest version) active: the error of its most
        recent load attempt, or why it was disabled."""
        with self._lock:
            return {str(s.path): s.error for s in self._scripts if s.error is not None}

    @property
    def memory_used(self) -> int:
        """Bytes currently used by the Lua runtime."""
        with self._lock:
            if self._closed:
                return 0
            return int(self._worker.submit(STUCK_GRACE, self._rt.memory_used))

    # -- public calls ----------------------------------------------------------------------------
    def call_filter(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
        fallback: str | None = None,
    ) -> dict[str, Any]:
        """Run the tool filter ``name`` (``"<server>-input"`` or ``"<server>-output"``) on ``data``.

        ``context`` adds top-level ctx fields that are not part of the data (``server_name``,
        ``tool_name``, ``request_id``, ``session_id``, ``timestamp``, ``duration``; for output
        filters optionally ``parameters`` = the tool arguments).  ``fallback`` names a server whose
        filter each script tries after ``name``'s own and before ``global-*`` (pando-lua's wiring
        passes ``"builtin"`` for built-in and plugin tools).  Returns the new data, or ``data``
        itself when nothing changed / no function matched / the call failed (non-strict)."""
        key = ("f", name, fallback or "")
        cached = self._name_cache.get(key)
        if cached is None:
            server, direction = split_filter(name)
            # per server, highest first: the dashed name, then the underscore one
            candidates = [
                spelling
                for s in (server, fallback, "global")
                if s
                for spelling in (
                    filter_name(s, direction),
                    f"{s.replace('-', '_').replace('.', '_')}_{direction}",
                )
            ]
            names = tuple(dict.fromkeys(n.encode("utf-8", "surrogatepass") for n in candidates))
            m1, m2 = (b"parameters", None) if direction == "input" else (b"result", b"parameters")
            cached = (names, m1, m2, server)
            self._name_cache[key] = cached
        names, m1, m2, server = cached
        extra: dict[str, Any] = {"server_name": server}
        if context:
            extra.update(context)
            if m2 is not None and "parameters" in context:
                m2 = None
        return self._dispatch(names, data, extra, m1, m2)

    def call_hook(self, hook_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``hook_<name>`` (fallback ``hook_global``) on ``data``; same return rules as
        :meth:`call_filter`.  ``ctx.hook_name`` holds the full function name."""
        key = ("h", hook_name)
        cached = self._name_cache.get(key)
        if cached is None:
            fname = hook_function_name(hook_name)
            cached = ((fname.encode("utf-8", "surrogatepass"), b"hook_global"), b"parameters", None, fname)
            self._name_cache[key] = cached
        names, m1, m2, fname = cached
        return self._dispatch(names, data, {"hook_name": fname}, m1, m2)

    def reload_if_changed(self) -> bool:
        """Reload scripts whose file changed (mtime/size/inode).  A broken edit keeps the last good
        version (warning).  Returns True if any script was reloaded successfully."""
        with self._lock:
            if self._closed:
                return False
            return self._reload_locked()

    def defined_hooks(self) -> list[str]:
        """Names of the filter/hook functions defined by the loaded scripts (sorted, unique)."""
        names: set[str] = set()
        with self._lock:
            if self._closed:
                return []
            for script in self._scripts:
                if script.env is not None:
                    found = self._worker.submit(STUCK_GRACE, self._rt.defined_functions, script.env)
                    names.update(n for n in found if _is_hook_function(n))
        return sorted(names)

    def close(self) -> None:
        """Stop the worker and drop the Lua state; later calls pass data through unchanged."""
        with self._lock:
            self._closed = True
            for script in self._scripts:
                script.env = None
            _stop_workers(self._box)
            self._rt = None  # type: ignore[assignment]

    def __enter__(self) -> LuaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------
    def _start_runtime(self) -> None:
        worker = _Worker("pando-lua")
        self._box[0] = worker
        self._worker = worker
        try:
            self._rt = worker.submit(
                self._timeout + STUCK_GRACE,
                _Runtime,
                self._timeout,
                self._memory_limit,
                self._helpers,
                self._logger,
            )
        except BaseException:
            _stop_workers(self._box)
            raise

    def _dispatch(
        self,
        names: tuple[bytes, ...],
        data: Mapping[str, Any],
        extra: dict[str, Any],
        m1: bytes | None,
        m2: bytes | None,
    ) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        if not self._closed and self._worker.is_current():
            # Called from a helper while a script runs: refused (it would reset the running call's
            # deadline and hook, and the caller holds the lock while it waits for us).
            message = f"lua: re-entrant call of {_text(names[0])} from a helper ignored"
            if self._strict:
                raise LuaFilterError(message, function=_text(names[0]))
            self._logger.warning("%s (data passed through unchanged)", message)
            return data  # type: ignore[return-value]
        with self._lock:
            if self._closed:
                return data  # type: ignore[return-value]
            if self._hot_reload:
                self._reload_locked()
            steps = [(s, s.env) for s in self._scripts if s.env is not None]
            if not steps:
                return data  # type: ignore[return-value]
            progress: list[Any] = []
            budget = len(steps) * self._timeout + STUCK_GRACE
            try:
                result, failures = self._worker.submit(
                    budget, self._rt.dispatch, steps, names, data, extra, m1, m2, self._strict, progress
                )
            except _Stuck:
                script, fname = (progress + [None, None])[:2]
                where = f"{script.path}: {fname}" if script is not None else "a Lua call"
                self._abandon(script, f"{where}: stuck for more than {budget:g}s inside one C function call")
                if script is None:
                    return data  # type: ignore[return-value]
                failure = _CallFailed(
                    "timeout",
                    f"timed out after {self._timeout:g}s inside one C function call "
                    "(script disabled until its file changes)",
                )
                result, failures = data, [(script, fname, failure)]
            return self._report(result, failures)

    def _report(self, result: Any, failures: list[tuple[Any, str, _CallFailed]]) -> Any:
        for script, fname, failure in failures:
            message = f"lua: {script.path}: {fname}: {failure.message}"
            if self._strict:
                cls = _ERROR_CLASSES.get(failure.kind, LuaFilterError)
                raise cls(message, script=str(script.path), function=fname, kind=failure.kind)
            self._logger.warning("%s (data passed through unchanged)", message)
        return result

    def _load(self, script: _Script) -> str | None:
        """(Re)load one script: on success it replaces the script's env; returns the error or None."""
        try:
            st = os.stat(script.path)
            script.sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if st.st_size > MAX_SCRIPT_SIZE:
                raise OSError(f"script larger than {MAX_SCRIPT_SIZE} bytes")
            code = script.path.read_bytes()
        except OSError as e:
            script.error = f"cannot read script: {e.strerror or e}"
            return script.error
        try:
            env = self._worker.submit(self._timeout + STUCK_GRACE, self._rt.load_script, script.label, code)
        except _CallFailed as failure:
            script.error = failure.message
            return script.error
        except _Stuck:
            script.error = (
                "top-level code stuck inside one C function call (script disabled until it changes)"
            )
            self._abandon(script, f"{script.path}: {script.error}")
            return script.error
        script.code, script.env, script.error, script.disabled = code, env, None, False
        return None

    def _reload_locked(self) -> bool:
        reloaded = False
        for script in self._scripts:
            try:
                st = os.stat(script.path)
                sig: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                sig = None
            if sig == script.sig:
                continue
            if sig is None:
                script.sig = None
                self._logger.warning(
                    "lua: %s: script file disappeared; keeping the last good version", script.path
                )
                continue
            had_good = script.env is not None
            err = self._load(script)
            if err is None:
                reloaded = True
                self._logger.info("lua: %s: reloaded", script.path)
            elif had_good and script.env is not None:
                self._logger.warning(
                    "lua: %s: reload failed, keeping the last good version: %s", script.path, err
                )
            else:
                self._logger.warning("lua: %s: reload failed, script disabled: %s", script.path, err)
        return reloaded

    def _abandon(self, culprit: _Script | None, reason: str) -> None:
        """The worker is stuck in a C call: leave it (it exits when the call returns), start a new
        runtime and reload the last good version of every script except the culprit."""
        self._logger.error(
            "lua: %s; starting a new Lua runtime (the stuck call keeps running in the background until it returns)",
            reason,
        )
        if culprit is not None:
            culprit.disabled = True
            if culprit.error is None:
                culprit.error = (
                    "disabled after being stuck inside one C function call (until its file changes)"
                )
        while True:
            _stop_workers(self._box)
            for script in self._scripts:
                script.env = None
            self._start_runtime()
            restart = False
            for script in self._scripts:
                if script.code is None or script.disabled:
                    continue
                try:
                    script.env = self._worker.submit(
                        self._timeout + STUCK_GRACE, self._rt.load_script, script.label, script.code
                    )
                except _CallFailed as failure:
                    script.error = failure.message
                    self._logger.warning("lua: %s: could not be restored: %s", script.path, failure.message)
                except _Stuck:
                    script.disabled = True
                    script.error = "stuck while being restored (script disabled until it changes)"
                    restart = True
                    break
            if not restart:
                return


def _same(orig: Any, new: Any) -> bool:
    """True if ``new`` (converted back from Lua) is exactly what Lua saw of ``orig``."""
    if orig is None:
        return new is None
    if isinstance(orig, bool):
        return type(new) is bool and new == orig
    if isinstance(orig, int):
        return type(new) is int and new == orig
    if isinstance(orig, float):
        return type(new) is float and (new == orig or (new != new and orig != orig))
    if isinstance(orig, str):
        return type(new) is str and new == orig
    if isinstance(orig, bytes):
        return type(new) is str and new == orig.decode("utf-8", "replace")
    if isinstance(orig, Mapping):
        if type(new) is not dict:
            return False
        count = 0
        for k, v in orig.items():
            if v is None:
                if k in new:
                    return False
                continue
            if k not in new or not _same(v, new[k]):
                return False
            count += 1
        return count == len(new)
    if isinstance(orig, Sequence):
        if type(new) is not list or len(new) != len(orig):
            return False
        return all(_same(a, b) for a, b in zip(orig, new, strict=True))
    return False
