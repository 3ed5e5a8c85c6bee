"""Sandbox escapes and resource limits: every attempt is blocked and the engine keeps working."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pando_lua import engine as engine_mod
from pando_lua.engine import LuaEngine, LuaFilterError, LuaMemoryLimitError, LuaTimeoutError


def hook(body: str) -> str:
    return f"function hook_x(ctx)\n{body}\nend\nfunction hook_ok(ctx) ctx.ok = true return ctx end\n"


def assert_still_works(engine: LuaEngine) -> None:
    assert engine.call_hook("ok", {"a": 1}) == {"a": 1, "ok": True}


ESCAPES = {
    "os_execute": 'os.execute("touch {marker}")',
    "os_exit": "os.exit(1)",
    "os_getenv": 'return {v = os.getenv("HOME")}',
    "os_remove": 'os.remove("{marker}")',
    "io_popen": 'io.popen("touch {marker}")',
    "io_open_write": 'local f = io.open("{marker}", "w") f:write("x") f:close()',
    "io_lines": 'for l in io.lines("/etc/passwd") do end',
    "loadfile": 'loadfile("/etc/passwd")',
    "dofile": 'dofile("/etc/passwd")',
    "string_dump": "return {b = string.dump(function() end)}",
    "string_dump_method": "local d = ('x').dump return {b = d(function() end)}",
    "load_bytecode": 'local f, e = load("\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n") if not f then error(e) end',
    "load_bytecode_mode_b": 'local f, e = load("\\27LuaT", "x", "b") if not f then error(e) end',
    "require_os": 'require("os")',
    "require_io": 'require("io")',
    "require_debug": 'require("debug")',
    "package": 'package.loadlib("libc.so.6", "system")',
    "debug_lib": "debug.sethook()",
    "debug_getregistry": "return {r = debug.getregistry()}",
    "python_global": 'python.eval("1")',
    "python_builtins": "return {x = python.builtins.open}",
    "string_metatable": 'getmetatable("").__index.upper = function() return "pwned" end',
    "string_metatable_raw": 'rawset(getmetatable(""), "__index", {})',
    "rawset": 'rawset(_G, "x", 1)',
    "helper_globals_attr": "return {g = pando_get_config.__globals__}",
    "helper_class_attr": "return {c = pando_log.__class__}",
    "helper_index": 'return {c = pando_load_file["__globals__"]}',
    "json_func_attr": "return {c = json.encode.__code__}",
    "gc_metamethod": "setmetatable({}, {__gc = function() end})",
    "collectgarbage_stop": 'collectgarbage("stop")',
    "getfenv": "getfenv(1)",
    "setfenv": "setfenv(1, {})",
    "loadstring": 'loadstring("return 1")',
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_attempt_is_blocked(name: str, make_engine, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    engine = make_engine(hook(ESCAPES[name].replace("{marker}", str(marker))), strict=True)
    with pytest.raises(LuaFilterError) as info:
        engine.call_hook("x", {"a": 1})
    assert info.value.kind == "error"
    assert info.value.function == "hook_x"
    assert not marker.exists()
    assert_still_works(engine)
    # The string library used by method calls is intact (the mutation attempt failed).
    assert engine.call_hook("ok", {"s": "abc"})["s"] == "abc"


def test_escapes_in_non_strict_mode_pass_data_through(make_engine, tmp_path: Path, caplog) -> None:
    marker = tmp_path / "pwned"
    engine = make_engine(hook(f'os.execute("touch {marker}")'))
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert not marker.exists()
    assert "hook_x" in caplog.text and "execute" in caplog.text


def test_environment_contains_only_the_allowed_globals(make_engine) -> None:
    engine = make_engine(
        hook(
            "local names = {} for k in pairs(_G) do names[#names + 1] = k end table.sort(names) return {names = names}"
        )
    )
    names = set(engine.call_hook("x", {})["names"])
    allowed = {
        "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "error", "getmetatable", "ipairs", "json",
        "load", "math", "next", "os", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen", "require",
        "select", "setmetatable", "string", "table", "tonumber", "tostring", "type", "unpack", "utf8", "xpcall",
        "pando_get_config", "pando_get_git_status", "pando_list_mcp_servers", "pando_list_tools",
        "pando_load_file", "pando_log", "hook_x", "hook_ok",
    }  # fmt: skip
    assert names == allowed
    os_engine = make_engine(
        hook("local n = {} for k in pairs(os) do n[#n + 1] = k end table.sort(n) return {n = n}")
    )
    assert os_engine.call_hook("x", {})["n"] == ["clock", "date", "difftime", "time"]


def test_helpers_are_plain_lua_functions_and_errors_are_strings(make_engine) -> None:
    engine = make_engine(
        hook(
            """
            local out = {}
            for _, name in ipairs({"pando_get_config", "pando_get_git_status", "pando_load_file",
                                   "pando_list_tools", "pando_list_mcp_servers", "pando_log", "print"}) do
              out[name] = type(_G[name])
            end
            out.json_encode = type(json.encode)
            local ok, err = pcall(json.decode, "{not json")
            out.err_type = type(err)
            local ok2, err2 = pcall(pando_get_config, {})
            out.err2_type = type(err2)
            return out
            """
        )
    )
    out = engine.call_hook("x", {})
    assert set(out.values()) == {"function", "string"}
    assert out["err_type"] == "string" and out["err2_type"] == "string"


def test_python_objects_in_lua_have_no_attributes(make_engine) -> None:
    """White box: even if a Python object reached Lua, the attribute filter denies everything."""
    engine = make_engine(None)
    rt = engine._rt  # noqa: SLF001 - deliberate white-box check

    class Secret:
        hello = "world"

    probe = rt.lua.eval(b"function(o, name) local ok, e = pcall(function() return o[name] end) return ok end")
    for name in (b"hello", b"__class__", b"__init__", b"__globals__", b"__dict__"):
        assert engine._worker.submit(5, probe, Secret(), name) is False  # noqa: SLF001
    assert engine._worker.submit(5, probe, len, b"__self__") is False  # noqa: SLF001


def test_infinite_loop_is_stopped_within_the_timeout(make_engine) -> None:
    engine = make_engine(hook("while true do end"), timeout=0.3, strict=True)
    start = time.monotonic()
    with pytest.raises(LuaTimeoutError) as info:
        engine.call_hook("x", {})
    elapsed = time.monotonic() - start
    assert elapsed < 0.3 + 1.0
    assert info.value.kind == "timeout"
    assert "timed out" in info.value.message
    assert_still_works(engine)


@pytest.mark.parametrize(
    "body",
    [
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "error(setmetatable({}, {__tostring = function() while true do end end}))",
        "local t = {} for i = 1, 100 do t[i] = i end table.sort(t, function(a, b) while true do end end)",
        "local s = ('x'):rep(100) s:gsub('.', function() while true do end end)",
        "local s = ('x'):rep(1e7) while true do local u = s:upper() end",
        "for i = 1, math.maxinteger do for j = 1, math.maxinteger do end end",
        "local t = setmetatable({}, {__index = function(t, k) while true do end end}) return {v = t.x}",
        "local f = load('while true do end') f()",
        "while true do local s = (''):rep(1e15) .. ('x'):rep(3, '') end",
        "while true do table.move({}, 1, 1e15, 2) end",
    ],
    ids=["pcall", "xpcall", "coroutine_wrap", "coroutine_resume", "tostring", "sort", "gsub", "c_heavy", "nested",
         "metamethod", "load", "empty_rep", "table_move"],
)  # fmt: skip
def test_loops_that_try_to_dodge_the_timeout_are_stopped(body: str, make_engine) -> None:
    engine = make_engine(hook(body), timeout=0.25)
    start = time.monotonic()
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert time.monotonic() - start < 0.25 + 1.0
    assert_still_works(engine)


def test_timeout_applies_to_top_level_code(make_engine) -> None:
    start = time.monotonic()
    engine = make_engine("while true do end", timeout=0.25)
    assert time.monotonic() - start < 0.25 + 1.0
    assert engine.load_errors and "timed out" in next(iter(engine.load_errors.values()))


@pytest.mark.parametrize(
    "body",
    [
        'local s = string.rep("x", 1e9) return {n = #s}',
        "local s = ('x'):rep(1e8) return {n = #s}",
        "local s = 'x' while true do s = s .. s end",
        "local t = {} while true do t[#t + 1] = ('x'):rep(1e5) .. #t end",
        "local t = {} for i = 1, 1e9 do t[i] = i end",
    ],
    ids=["rep", "rep_method", "doubling", "table_of_strings", "big_table"],
)
def test_memory_bombs_hit_the_memory_cap(body: str, make_engine) -> None:
    engine = make_engine(hook(body), strict=True, memory_limit=16 * 1024 * 1024, timeout=5)
    with pytest.raises(LuaMemoryLimitError) as info:
        engine.call_hook("x", {})
    assert info.value.kind == "memory"
    assert "memory limit exceeded" in info.value.message
    assert_still_works(engine)
    assert engine.memory_used < 16 * 1024 * 1024


def test_memory_bomb_non_strict_passes_through(make_engine, caplog) -> None:
    engine = make_engine(hook('return {s = string.rep("x", 1e9)}'))
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert "memory limit exceeded" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        "local function f(n) return f(n + 1) + 1 end return {v = f(1)}",
        "local function f(n) return 1 + f(n + 1) end return {v = f(1)}",
        "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return {v = t.x}",
        "local function f() local ok, e = pcall(f) if not ok then error(e, 0) end end f()",
        "local s = ('a'):rep(1000) return {v = s:find(('a?'):rep(400))}",
    ],
    ids=["lua_recursion", "lua_recursion2", "metamethod_recursion", "pcall_recursion", "pattern_depth"],
)
def test_deep_recursion_is_an_ordinary_error(body: str, make_engine) -> None:
    engine = make_engine(hook(body), strict=True, timeout=5, memory_limit=8 * 1024 * 1024)
    with pytest.raises(LuaFilterError) as info:
        engine.call_hook("x", {})
    assert info.value.kind in ("error", "memory")
    assert_still_works(engine)


def test_pcall_cannot_swallow_the_memory_limit_forever(make_engine) -> None:
    engine = make_engine(hook('while true do pcall(string.rep, "x", 1e9) end'), timeout=0.25, strict=True)
    with pytest.raises(LuaTimeoutError):
        engine.call_hook("x", {})
    assert_still_works(engine)


def test_stuck_c_call_abandons_the_runtime(make_engine, tmp_path: Path, monkeypatch, caplog) -> None:
    """A single C call the hook cannot interrupt (pathological pattern): the caller gets its data
    back after timeout + grace, the culprit is disabled until its file changes, others keep working."""
    monkeypatch.setattr(engine_mod, "STUCK_GRACE", 0.4)
    other = tmp_path / "other.lua"
    other.write_text("function hook_y(ctx) ctx.y = true return ctx end\n")
    engine = make_engine(
        'function hook_x(ctx) local s = ("a"):rep(300) s:find(".-.-.-b") return {t = 1} end\n',
        name="slow.lua",
        scripts=[other],
        timeout=0.2,
    )
    data = {"a": 1}
    start = time.monotonic()
    assert engine.call_hook("x", data) is data
    assert time.monotonic() - start < 0.2 + 0.4 + 1.0
    assert "stuck" in caplog.text
    assert engine.call_hook("y", {"a": 1}) == {"a": 1, "y": True}
    assert engine.call_hook("x", data) is data  # disabled: no second stuck thread
    assert any("disabled" in e for e in engine.load_errors.values())
    slow = tmp_path / "slow.lua"
    slow.write_text("function hook_x(ctx) ctx.fixed = true return ctx end\n")
    assert engine.reload_if_changed()
    assert engine.call_hook("x", {"a": 1}) == {"a": 1, "fixed": True}


def test_strict_stuck_call_raises_timeout(make_engine, monkeypatch) -> None:
    monkeypatch.setattr(engine_mod, "STUCK_GRACE", 0.3)
    engine = make_engine(hook('local s = ("a"):rep(250) s:find(".-.-.-b")'), timeout=0.1, strict=True)
    with pytest.raises(LuaTimeoutError):
        engine.call_hook("x", {})


def test_concurrent_callers_are_serialised(make_engine) -> None:
    engine = make_engine(
        hook("counter = (counter or 0) + 1 local before = counter for i = 1, 2000 do end "
             "ctx.same = (counter == before) return ctx")
    )  # fmt: skip
    results: list[dict] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(50):
                results.append(engine.call_hook("x", {"i": i}))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 200
    assert all(r["same"] is True for r in results)


def test_helper_raising_base_exception_propagates_and_engine_survives(make_engine) -> None:
    from pando_lua.helpers import LuaHelpers

    def boom() -> list[str]:
        raise SystemExit(3)

    engine = make_engine(
        hook("while true do pcall(pando_list_tools) end"), helpers=LuaHelpers(list_tools=boom)
    )
    with pytest.raises(SystemExit):
        engine.call_hook("x", {})
    assert_still_works(engine)


@pytest.mark.parametrize(
    "body",
    [
        'local s = string.rep("", "1000000000000000") return {n = #s}',
        'local s = ("x"):rep("1e15") return {n = #s}',
        'local s = string.rep("", "1e15", "") return {n = #s}',
        'table.move({}, 1, "1e15", 2) return {}',
        'table.move({}, "1", "1000000000000000", 2) return {}',
    ],
    ids=["rep_string_count", "rep_float_string_count", "rep_empty_sep", "move_string_end", "move_string_range"],
)
def test_counts_given_as_strings_are_checked_and_the_lua_thread_stops(body: str, make_engine) -> None:
    """Issue 19 #10: string counts passed the guards and left a thread looping inside one C call."""
    before = {t for t in threading.enumerate() if t.name == "pando-lua"}
    engine = make_engine(hook(body), timeout=0.5)
    start = time.monotonic()
    engine.call_hook("x", {"a": 1})
    assert time.monotonic() - start < 0.5 + 1.0
    assert_still_works(engine)
    workers = {t for t in threading.enumerate() if t.name == "pando-lua"} - before
    engine.close()
    for worker in workers:  # no runtime was abandoned to a thread still busy in C
        worker.join(timeout=5)
        assert not worker.is_alive()
