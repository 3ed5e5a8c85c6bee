"""Function lookup, the ctx contract, return values, strictness, hot reload, chaining."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from pando_lua.config import LuaConfig
from pando_lua.engine import (
    BUILTIN_SERVER,
    LuaEngine,
    LuaFilterError,
    LuaLoadError,
    LuaTimeoutError,
    filter_name,
    hook_function_name,
)

# -- names ----------------------------------------------------------------------------------------


def test_filter_and_hook_names() -> None:
    assert filter_name("github", "input") == "github-input"
    assert filter_name("my_server.v2", "output") == "my-server-v2-output"
    assert filter_name(BUILTIN_SERVER, "input") == "builtin-input"
    with pytest.raises(ValueError):
        filter_name("x", "sideways")
    assert hook_function_name("system_prompt") == "hook_system_prompt"
    assert hook_function_name("hook_system_prompt") == "hook_system_prompt"
    assert hook_function_name("evaluation-complete") == "hook_evaluation_complete"


def test_bad_filter_name_is_rejected(make_engine) -> None:
    engine = make_engine("")
    with pytest.raises(ValueError):
        engine.call_filter("github", {})


# -- lookup precedence ----------------------------------------------------------------------------

SPECIFIC = '_G["github-input"] = function(ctx) ctx.parameters.by = "dashed" return ctx.parameters end\n'
UNDERSCORE = 'function github_input(ctx) ctx.parameters.by = "underscore" return ctx.parameters end\n'
GLOBAL = '_G["global-input"] = function(ctx) ctx.parameters.by = "global:" .. ctx.server_name return ctx.parameters end\n'
GLOBAL_UNDERSCORE = 'function global_input(ctx) ctx.by = "global_underscore" return ctx end\n'


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (SPECIFIC + UNDERSCORE + GLOBAL, "dashed"),
        (UNDERSCORE + GLOBAL, "underscore"),
        (GLOBAL + GLOBAL_UNDERSCORE, "global:github"),
        (GLOBAL_UNDERSCORE, "global_underscore"),
    ],
)
def test_filter_lookup_precedence(code: str, expected: str, make_engine) -> None:
    engine = make_engine(code)
    assert engine.call_filter("github-input", {"q": "x"}) == {"q": "x", "by": expected}


def test_no_matching_function_leaves_data_unchanged(make_engine) -> None:
    engine = make_engine(SPECIFIC + "function hook_other(ctx) return {} end\n")
    data = {"q": "x"}
    assert engine.call_filter("gitlab-input", data) is data
    assert engine.call_filter("github-output", data) is data
    assert engine.call_hook("system_prompt", data) is data


def test_server_names_are_normalised_and_both_forms_found(make_engine) -> None:
    engine = make_engine(
        '_G["my-server-v2-input"] = function(ctx) return {seen = ctx.server_name} end\n'
        "function other_srv_input(ctx) return {seen = ctx.server_name} end\n"
    )
    assert engine.call_filter(filter_name("my_server.v2", "input"), {}) == {"seen": "my-server-v2"}
    assert engine.call_filter("my_server_v2_input", {}, context={"server_name": "my_server.v2"}) == {
        "seen": "my_server.v2"
    }
    assert engine.call_filter("other-srv-input", {}) == {"seen": "other-srv"}


def test_builtin_tools_use_the_builtin_server_name(make_engine) -> None:
    engine = make_engine(
        "function builtin_input(ctx) ctx.parameters.tool = ctx.tool_name return ctx.parameters end"
    )
    out = engine.call_filter(
        filter_name(BUILTIN_SERVER, "input"), {"cmd": "ls"}, context={"tool_name": "bash"}
    )
    assert out == {"cmd": "ls", "tool": "bash"}


def test_hook_lookup_precedence(make_engine) -> None:
    engine = make_engine(
        "function hook_system_prompt(ctx) ctx.by = 'specific' return ctx end\n"
        "function hook_global(ctx) ctx.by = 'global:' .. ctx.hook_name return ctx end\n"
    )
    assert engine.call_hook("system_prompt", {})["by"] == "specific"
    assert engine.call_hook("hook_system_prompt", {})["by"] == "specific"
    assert engine.call_hook("user_prompt", {})["by"] == "global:hook_user_prompt"
    assert engine.call_hook("hook_evaluation_complete", {})["by"] == "global:hook_evaluation_complete"


def test_non_function_globals_are_ignored(make_engine) -> None:
    engine = make_engine('hook_x = "not a function"\n_G["github-input"] = 42\n')
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert engine.call_filter("github-input", data) is data


# -- the ctx table ---------------------------------------------------------------------------------


def test_hook_data_is_flat_and_mirrored_under_parameters(make_engine) -> None:
    engine = make_engine(
        """
        function hook_system_prompt(ctx)
          ctx.system_prompt = ctx.system_prompt .. "\\n\\nAlways answer in Spanish."
          return ctx
        end
        function hook_user_prompt(ctx)
          ctx.modified_content = string.gsub(ctx.parameters.user_content, "sk%-[%w]+", "[REDACTED]")
          return ctx
        end
        function hook_parameters_only(ctx)
          ctx.parameters.extra = ctx.agent_name
          return ctx.parameters
        end
        """
    )
    out = engine.call_hook("system_prompt", {"system_prompt": "Be nice.", "agent_name": "coder"})
    assert out == {"system_prompt": "Be nice.\n\nAlways answer in Spanish.", "agent_name": "coder"}
    out = engine.call_hook("user_prompt", {"session_id": "s1", "user_content": "key sk-abc123 here"})
    assert out == {
        "session_id": "s1",
        "user_content": "key sk-abc123 here",
        "modified_content": "key [REDACTED] here",
    }
    out = engine.call_hook("parameters_only", {"agent_name": "coder"})
    assert out == {"agent_name": "coder", "extra": "coder"}


def test_returning_ctx_merges_top_level_and_parameters_changes(make_engine) -> None:
    engine = make_engine(
        """
        function hook_both(ctx)
          ctx.a = "top"              -- top-level change wins
          ctx.parameters.b = "param" -- change through the mirror is kept
          ctx.parameters.a = "ignored"
          ctx.c = nil                -- deletion at top level
          ctx.new = 1
          return ctx
        end
        function hook_replace_mirror(ctx)
          ctx.parameters = {only = true}
          return ctx
        end
        function hook_nested(ctx)
          ctx.parameters.nested.x = 2
          return ctx
        end
        """
    )
    out = engine.call_hook("both", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert out == {"a": "top", "b": "param", "d": 4, "new": 1}
    assert engine.call_hook("replace_mirror", {"a": 1}) == {"only": True}
    assert engine.call_hook("nested", {"nested": {"x": 1}, "k": "v"}) == {"nested": {"x": 2}, "k": "v"}


def test_context_fields_are_visible_but_not_copied_into_data(make_engine) -> None:
    engine = make_engine(
        """
        _G["github-input"] = function(ctx)
          ctx.seen = table.concat({ctx.server_name, ctx.tool_name, ctx.session_id, ctx.request_id}, ",")
          return ctx
        end
        """
    )
    out = engine.call_filter(
        "github-input",
        {"q": "x"},
        context={"server_name": "github", "tool_name": "search", "session_id": "s", "request_id": "r"},
    )
    assert out == {"q": "x", "seen": "github,search,s,r"}


def test_data_fields_shadowed_by_context_stay_reachable_via_parameters(make_engine) -> None:
    engine = make_engine(
        """
        _G["github-input"] = function(ctx)
          ctx.seen = ctx.tool_name .. "/" .. ctx.parameters.tool_name
          return ctx
        end
        """
    )
    out = engine.call_filter("github-input", {"tool_name": "arg"}, context={"tool_name": "search"})
    assert out == {"tool_name": "arg", "seen": "search/arg"}


def test_output_filter_sees_result_and_the_go_example_works(make_engine) -> None:
    engine = make_engine(
        '_G["global-output"] = function(ctx) ctx.result.output = ctx.result.output:sub(1, 5) return ctx.result end\n'
        '_G["args-output"] = function(ctx) return {output = ctx.output .. ":" .. ctx.parameters.q} end\n'
    )
    assert engine.call_filter("github-output", {"output": "0123456789"}) == {"output": "01234"}
    out = engine.call_filter("args-output", {"output": "res"}, context={"parameters": {"q": "query"}})
    assert out == {"output": "res:query"}


def test_go_input_filter_example(make_engine) -> None:
    engine = make_engine(
        '_G["github-input"] = function(ctx) ctx.parameters.per_page = 20; return ctx.parameters end'
    )
    assert engine.call_filter("github-input", {"q": "bug", "per_page": 100}) == {"q": "bug", "per_page": 20}


# -- return values -----------------------------------------------------------------------------------


def test_nil_return_and_unchanged_table_return_the_same_object(make_engine) -> None:
    engine = make_engine(
        "function hook_nil(ctx) ctx.changed = true end\n"
        "function hook_same(ctx) return ctx end\n"
        "function hook_params(ctx) return ctx.parameters end\n"
    )
    data = {"a": 1, "n": None, "l": [1, None], "f": 1.0}
    assert engine.call_hook("nil", data) is data
    assert engine.call_hook("same", data) is data
    assert engine.call_hook("params", data) is data


def test_fresh_table_replaces_the_data(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) return {replaced = true} end")
    assert engine.call_hook("x", {"a": 1}) == {"replaced": True}


@pytest.mark.parametrize(
    ("ret", "fragment"),
    [
        ("5", "got a number"),
        ('"text"', "got a string"),
        ("true", "got a boolean"),
        ("print", "got a function"),
        ("{1, 2, 3}", "got an array"),
        ("{f = print}", "cannot convert a Lua function"),
        ("{[true] = 1}", "table keys must be strings or numbers"),
    ],
)
def test_bad_return_values(ret: str, fragment: str, make_engine, caplog) -> None:
    engine = make_engine(f"function hook_x(ctx) return {ret} end", name="bad.lua")
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert fragment in caplog.text and "bad.lua" in caplog.text and "hook_x" in caplog.text
    strict = make_engine(f"function hook_x(ctx) return {ret} end", strict=True)
    with pytest.raises(LuaFilterError) as info:
        strict.call_hook("x", data)
    assert fragment in info.value.message
    assert info.value.kind in ("return", "conversion")


# -- strict vs non-strict ------------------------------------------------------------------------------


def test_runtime_error_non_strict_warns_and_passes_through(make_engine, caplog) -> None:
    engine = make_engine("function hook_x(ctx) error('boom here') end", name="err.lua")
    data = {"a": 1}
    with caplog.at_level(logging.WARNING, logger="pando_lua"):
        assert engine.call_hook("x", data) is data
    record = next(r for r in caplog.records if "boom here" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert "err.lua" in record.getMessage() and "hook_x" in record.getMessage()


def test_runtime_error_strict_raises_with_message(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) local t = nil return t.field end", name="err.lua", strict=True)
    with pytest.raises(LuaFilterError) as info:
        engine.call_hook("x", {})
    err = info.value
    assert err.kind == "error" and err.function == "hook_x" and err.script.endswith("err.lua")
    assert "err.lua:1:" in err.message and "attempt to index a nil value" in err.message
    assert str(err) == err.message


def test_error_with_table_value(make_engine) -> None:
    engine = make_engine(
        "function hook_x(ctx) error({code = 1}) end\n"
        "function hook_y(ctx) error(setmetatable({}, {__tostring = function() return 'custom' end})) end\n",
        strict=True,
    )
    with pytest.raises(LuaFilterError, match="table"):
        engine.call_hook("x", {})
    with pytest.raises(LuaFilterError, match="custom"):
        engine.call_hook("y", {})


def test_timeout_strict_and_non_strict(make_engine, caplog) -> None:
    code = "function hook_x(ctx) while true do end end function hook_y(ctx) return {ok = true} end"
    lenient = make_engine(code, timeout=0.2)
    data = {"a": 1}
    assert lenient.call_hook("x", data) is data
    assert "timed out after 0.2s" in caplog.text
    assert lenient.call_hook("y", data) == {"ok": True}
    strict = make_engine(code, timeout=0.2, strict=True)
    with pytest.raises(LuaTimeoutError) as info:
        strict.call_hook("x", data)
    assert info.value.kind == "timeout"
    assert strict.call_hook("y", data) == {"ok": True}


@pytest.mark.parametrize(
    "code",
    ["function hook_x(ctx", "error('top level failure')", "\x1bLua\x54\x00garbage", None],
    ids=["syntax", "runtime", "bytecode", "missing"],
)
def test_load_errors_strict_and_non_strict(code: str | None, tmp_path: Path, caplog) -> None:
    path = tmp_path / "broken.lua"
    if code is not None:
        path.write_bytes(code.encode("latin-1"))
    engine = LuaEngine([path])
    try:
        data = {"a": 1}
        assert engine.call_hook("x", data) is data
        assert str(path) in engine.load_errors
        assert "broken.lua" in caplog.text
        assert engine.defined_hooks() == []
    finally:
        engine.close()
    with pytest.raises(LuaLoadError) as info:
        LuaEngine([path], strict=True)
    assert str(path) in info.value.errors
    assert "broken.lua" in str(info.value)


def test_bytecode_script_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "compiled.lua"
    path.write_bytes(b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08")
    with pytest.raises(LuaLoadError, match="binary chunk"):
        LuaEngine([path], strict=True)


def test_strict_load_error_lists_every_failing_script(tmp_path: Path) -> None:
    good, bad1, bad2 = tmp_path / "good.lua", tmp_path / "bad1.lua", tmp_path / "bad2.lua"
    good.write_text("function hook_x(ctx) end")
    bad1.write_text("this is not lua")
    bad2.write_text("error('nope')")
    with pytest.raises(LuaLoadError) as info:
        LuaEngine([good, bad1, bad2], strict=True)
    assert set(info.value.errors) == {str(bad1), str(bad2)}


# -- several scripts -----------------------------------------------------------------------------------


def test_scripts_run_as_a_chain_and_failures_are_isolated(tmp_path: Path, make_engine, caplog) -> None:
    a, b, c = tmp_path / "a.lua", tmp_path / "b.lua", tmp_path / "c.lua"
    a.write_text("function hook_x(ctx) ctx.trail = (ctx.trail or '') .. 'a' return ctx end")
    b.write_text("function hook_x(ctx) error('b fails') end")
    c.write_text("function hook_global(ctx) ctx.trail = ctx.trail .. 'c' return ctx end")
    engine = make_engine(scripts=[a, b, c])
    assert engine.call_hook("x", {}) == {"trail": "ac"}
    assert "b fails" in caplog.text
    assert engine.defined_hooks() == ["hook_global", "hook_x"]


def test_globals_persist_between_calls_and_scripts_are_isolated(tmp_path: Path, make_engine) -> None:
    a, b = tmp_path / "a.lua", tmp_path / "b.lua"
    a.write_text("n = 0 function hook_x(ctx) n = n + 1 ctx.a = n return ctx end")
    b.write_text("function hook_x(ctx) ctx.b = tostring(n) return ctx end")
    engine = make_engine(scripts=[a, b])
    assert engine.call_hook("x", {}) == {"a": 1, "b": "nil"}
    assert engine.call_hook("x", {}) == {"a": 2, "b": "nil"}


def test_defined_hooks(make_engine) -> None:
    engine = make_engine(
        "function hook_system_prompt(ctx) end\n"
        '_G["github-input"] = function(ctx) end\n'
        "function gitlab_output(ctx) end\n"
        "function helper(x) end\n"
        "local function hook_local(ctx) end\n"
        "hook_value = 3\n"
    )
    assert engine.defined_hooks() == ["github-input", "gitlab_output", "hook_system_prompt"]


# -- hot reload ----------------------------------------------------------------------------------------


def _bump_mtime(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def test_hot_reload_picks_up_changes_and_keeps_last_good_version(make_engine, tmp_path: Path, caplog) -> None:
    engine = make_engine("function hook_x(ctx) return {v = 1} end", name="live.lua", hot_reload=True)
    path = tmp_path / "live.lua"
    assert engine.call_hook("x", {}) == {"v": 1}
    assert engine.reload_if_changed() is False  # nothing changed: cheap no-op

    path.write_text("function hook_x(ctx) return {v = 2} end")
    _bump_mtime(path, 10)
    assert engine.call_hook("x", {}) == {"v": 2}  # hot_reload=True checks before each call

    path.write_text("function hook_x(ctx) return {v = ")  # broken edit
    _bump_mtime(path, 20)
    with caplog.at_level(logging.WARNING, logger="pando_lua"):
        assert engine.call_hook("x", {}) == {"v": 2}
    assert "keeping the last good version" in caplog.text
    assert str(path) in engine.load_errors
    caplog.clear()
    assert engine.call_hook("x", {}) == {"v": 2}
    assert "keeping the last good version" not in caplog.text  # warned once per change

    path.write_text("function hook_x(ctx) return {v = 3} end")
    _bump_mtime(path, 30)
    assert engine.call_hook("x", {}) == {"v": 3}
    assert engine.load_errors == {}


def test_reload_without_hot_reload_flag_is_explicit(make_engine, tmp_path: Path) -> None:
    engine = make_engine("function hook_x(ctx) return {v = 1} end", name="s.lua")
    path = tmp_path / "s.lua"
    path.write_text("function hook_x(ctx) return {v = 2} end")
    _bump_mtime(path, 10)
    assert engine.call_hook("x", {}) == {"v": 1}
    assert engine.reload_if_changed() is True
    assert engine.call_hook("x", {}) == {"v": 2}


def test_reload_resets_globals_and_fixes_a_script_that_never_loaded(make_engine, tmp_path: Path) -> None:
    engine = make_engine("function hook_x(ctx", name="s.lua", hot_reload=True)
    path = tmp_path / "s.lua"
    assert engine.call_hook("x", {"a": 1}) == {"a": 1}
    path.write_text("n = 0 function hook_x(ctx) n = n + 1 return {n = n} end")
    _bump_mtime(path, 10)
    assert engine.call_hook("x", {}) == {"n": 1}
    assert engine.call_hook("x", {}) == {"n": 2}
    _bump_mtime(path, 20)
    assert engine.call_hook("x", {}) == {"n": 1}


def test_deleted_script_keeps_last_good_version(make_engine, tmp_path: Path, caplog) -> None:
    engine = make_engine("function hook_x(ctx) return {v = 1} end", name="s.lua", hot_reload=True)
    (tmp_path / "s.lua").unlink()
    assert engine.call_hook("x", {}) == {"v": 1}
    assert "disappeared" in caplog.text


def test_script_appearing_later_is_loaded(tmp_path: Path, make_engine) -> None:
    path = tmp_path / "later.lua"
    engine = make_engine(scripts=[path], hot_reload=True)
    assert engine.call_hook("x", {"a": 1}) == {"a": 1}
    path.write_text("function hook_x(ctx) return {late = true} end")
    assert engine.call_hook("x", {}) == {"late": True}


# -- construction / lifecycle -----------------------------------------------------------------------------


def test_from_config_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "hooks.lua").write_text("function hook_x(ctx) return {ok = true} end")
    config = LuaConfig.from_dict({"scripts": ["hooks.lua"], "timeout": "500ms", "strict": True})
    engine = LuaEngine.from_config(config, base_dir=tmp_path)
    try:
        assert engine.timeout == 0.5 and engine.strict and engine.hot_reload
        assert engine.scripts == [tmp_path / "hooks.lua"]
        assert engine.call_hook("x", {}) == {"ok": True}
    finally:
        engine.close()


def test_close_makes_calls_pass_through(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) return {v = 1} end")
    engine.close()
    data = {"a": 1}
    assert engine.call_hook("x", data) is data
    assert engine.defined_hooks() == []
    assert engine.reload_if_changed() is False
    engine.close()  # idempotent


def test_context_manager_and_invalid_arguments(tmp_path: Path) -> None:
    with LuaEngine([]) as engine:
        assert engine.call_hook("x", {"a": 1}) == {"a": 1}
        with pytest.raises(TypeError):
            engine.call_hook("x", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LuaEngine([], timeout=0)
    with pytest.raises(ValueError):
        LuaEngine([], memory_limit=-1)
    with pytest.raises(LuaLoadError):
        LuaEngine([], memory_limit=1024)  # too small to even start


def test_reentrant_call_from_a_helper_is_refused(make_engine, caplog) -> None:
    from pando_lua.helpers import LuaHelpers

    holder: dict[str, LuaEngine] = {}

    def get_config(key: str):
        return holder["engine"].call_hook("x", {"from": key})

    engine = make_engine(
        "function hook_x(ctx) ctx.x = true return ctx end\n"
        "function hook_outer(ctx) return {inner = pando_get_config('k')} end\n",
        helpers=LuaHelpers(get_config=get_config),
    )
    holder["engine"] = engine
    assert engine.call_hook("outer", {}) == {"inner": {"from": "k"}}
    assert "re-entrant" in caplog.text
    assert engine.call_hook("x", {}) == {"x": True}


def test_dropped_engines_stop_their_worker_thread(tmp_path: Path) -> None:
    import gc
    import threading

    path = tmp_path / "s.lua"
    path.write_text("function hook_x(ctx) return {v = 1} end")
    before = {t.ident for t in threading.enumerate()}
    for _ in range(5):
        LuaEngine([path]).call_hook("x", {})
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t.ident not in before and t.name == "pando-lua"]
        if not extra:
            break
        extra[0].join(0.1)
    assert not extra
