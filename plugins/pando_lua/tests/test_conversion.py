"""Value conversion Python <-> Lua and the json module."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pando_lua.engine import LuaFilterError

IDENTITY = "function hook_id(ctx) return ctx.parameters end\n"
# Forces a rebuild of the table in Lua so the result is not detected as "unchanged".
COPY = """
local function copy(v)
  if type(v) ~= "table" or v == json.null then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  if getmetatable(v) == false then json.array(out) end  -- arrays are marked (protected metatable)
  return out
end
function hook_copy(ctx)
  local out = copy(ctx.parameters)
  out._copied = true
  return out
end
"""
TYPES = """
local function describe(v)
  local t = type(v)
  if t == "number" then return math.type(v) end
  if t == "table" then
    if v == json.null then return "null" end
    local out = {}
    for k, x in pairs(v) do out[tostring(k) .. ":" .. type(k)] = describe(x) end
    return out
  end
  return t
end
function hook_types(ctx) return {types = describe(ctx.parameters)} end
"""


@pytest.fixture
def engine(make_engine):
    return make_engine(IDENTITY + COPY + TYPES, strict=True)


def test_python_values_arrive_with_the_right_lua_types(engine) -> None:
    data = {
        "i": 3,
        "f": 3.0,
        "neg": -2**63,
        "b": True,
        "s": "héllo ✓",
        "list": [1, "a", None],
        "empty_list": [],
        "empty_dict": {},
        "nested": {"k": [{"x": 1.5}]},
        "none": None,
    }  # fmt: skip
    types = engine.call_hook("types", data)["types"]
    assert types == {
        "i:string": "integer",
        "f:string": "float",
        "neg:string": "integer",
        "b:string": "boolean",
        "s:string": "string",
        "list:string": {"1:number": "integer", "2:number": "string", "3:number": "null"},
        "empty_list:string": {},
        "empty_dict:string": {},
        "nested:string": {"k:string": {"1:number": {"x:string": "float"}}},
    }


def test_round_trip_through_a_rebuilt_table(engine) -> None:
    data = {
        "int": 7,
        "float": 2.5,
        "float_integral": 4.0,
        "big": 2**62,
        "true": True,
        "false": False,
        "text": "naïve 日本語 🎉",
        "list": [1, 2.0, "three", [4], {"five": 5}],
        "list_with_none": [None, 1, None],
        "empty_list": [],
        "empty_dict": {},
        "deep": {"a": {"b": {"c": [[[]]]}}},
        "tuple": (1, 2),
    }
    out = engine.call_hook("copy", data)
    expected = dict(data, tuple=[1, 2], _copied=True)
    assert out == expected
    assert type(out["int"]) is int and type(out["float_integral"]) is float and type(out["big"]) is int
    assert out["empty_list"] == [] and out["empty_dict"] == {}


def test_none_values_are_absent_in_lua_but_kept_when_unchanged(engine, make_engine) -> None:
    data = {"a": None, "b": 1}
    assert engine.call_hook("id", data) is data  # unchanged -> the very same object, None kept
    changer = make_engine("function hook_x(ctx) ctx.c = (ctx.a == nil) return ctx end")
    assert changer.call_hook("x", data) == {"b": 1, "c": True}  # changed -> None entry dropped


def test_lua_values_come_back_as_python_values(make_engine) -> None:
    engine = make_engine(
        """
        function hook_x(ctx)
          return {
            int = 1, float = 1.5, integral_float = 2.0, huge = math.maxinteger, tiny = math.mininteger,
            str = "ü", bool = false, null = json.null,
            seq = {10, 20, 30}, empty = {}, marked = json.array(), holes = {[1] = "a", [3] = "c"},
            sparse = {[5] = "x"}, mixed = {1, 2, k = "v"}, float_key = {[1.5] = "f"},
            nested = {{a = {b = {}}}}, nulls = {json.null, 1},
            bytes = "\\xff\\xfeok",
          }
        end
        """,
        strict=True,
    )
    out = engine.call_hook("x", {})
    assert out == {
        "int": 1,
        "float": 1.5,
        "integral_float": 2.0,
        "huge": 2**63 - 1,
        "tiny": -(2**63),
        "str": "ü",
        "bool": False,
        "null": None,
        "seq": [10, 20, 30],
        "empty": {},
        "marked": [],
        "holes": {"1": "a", "3": "c"},
        "sparse": {"5": "x"},
        "mixed": {"1": 1, "2": 2, "k": "v"},
        "float_key": {"1.5": "f"},
        "nested": [{"a": {"b": {}}}],
        "nulls": [None, 1],
        "bytes": "\ufffd\ufffdok",
    }
    assert type(out["integral_float"]) is float and type(out["int"]) is int


def test_emptied_list_stays_a_list(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) ctx.items[1] = nil ctx.items[2] = nil return ctx end")
    assert engine.call_hook("x", {"items": [1, 2]}) == {"items": []}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"k": 2**64}, "does not fit"),
        ({"k": {1: "int key"}}, "dict keys must be strings"),
        ({"k": object()}, "cannot convert a Python object"),
        ({"k": {1, 2}}, "cannot convert a Python set"),
    ],
)
def test_unconvertible_python_data(value, fragment: str, engine, caplog, make_engine) -> None:
    with pytest.raises(LuaFilterError) as info:
        engine.call_hook("id", value)
    assert info.value.kind == "conversion" and fragment in info.value.message
    lenient = make_engine(IDENTITY)
    assert lenient.call_hook("id", value) is value
    assert fragment in caplog.text


def test_cyclic_python_data_is_an_error(engine) -> None:
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(LuaFilterError, match="nested deeper"):
        engine.call_hook("id", cyclic)


def test_cyclic_lua_table_is_an_error(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) local t = {} t.t = t return t end", strict=True)
    with pytest.raises(LuaFilterError, match="nested deeper"):
        engine.call_hook("x", {})


def test_coroutine_value_is_an_error(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) return {c = coroutine.create(print)} end", strict=True)
    with pytest.raises(LuaFilterError, match="cannot convert a Lua coroutine"):
        engine.call_hook("x", {})


json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
json_scalars = json_scalars | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_round_trip_property(value, engine) -> None:
    """Any JSON-like value survives Python -> Lua -> Python when the script rebuilds it,
    except that None dict values disappear (nil) - the documented rule."""

    def drop_none_values(v):
        if isinstance(v, dict):
            return {k: drop_none_values(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [drop_none_values(x) for x in v]
        return v

    out = engine.call_hook("copy", {"v": value})
    expected = drop_none_values({"v": value, "_copied": True})
    assert out == expected
    assert json.dumps(out, sort_keys=True) == json.dumps(expected, sort_keys=True)  # int/float identity


# -- json module ------------------------------------------------------------------------------------


def test_json_module_round_trip(make_engine) -> None:
    engine = make_engine(
        """
        local json = require("json")
        assert(json == _G.json)
        function hook_x(ctx)
          local text = json.encode(ctx.parameters)
          local back = json.decode(text)
          return {text = text, back = back,
                  null_is_sentinel = json.decode("null") == json.null,
                  obj_null = json.decode('{"a": null}').a == json.null,
                  empty_obj = json.encode({}), empty_arr = json.encode(json.array()),
                  arr = json.encode({1, 2, json.null}), str = json.encode("é\\n"),
                  pretty = json.encode({a = 1}, 2), null_text = json.encode(json.null),
                  tostring_null = tostring(json.null)}
        end
        """,
        strict=True,
    )
    data = {"a": [1, 2.5, None, {"x": []}], "b": {}, "c": "ñ", "d": True}
    out = engine.call_hook("x", data)
    assert json.loads(out["text"]) == data
    assert out["back"] == data
    assert out["null_is_sentinel"] and out["obj_null"]
    assert out["empty_obj"] == "{}" and out["empty_arr"] == "[]"
    assert out["arr"] == "[1,2,null]" and out["str"] == '"é\\n"'
    assert out["pretty"] == '{\n  "a": 1\n}' and out["null_text"] == "null"
    assert out["tostring_null"] == "null"


def test_json_errors_are_lua_errors(make_engine) -> None:
    engine = make_engine(
        """
        function hook_x(ctx)
          local r = {}
          r[1] = select(2, pcall(json.decode, "{bad"))
          r[2] = select(2, pcall(json.encode, {f = print}))
          r[3] = select(2, pcall(json.encode, 0/0))
          r[4] = select(2, pcall(json.decode, 42))
          r[5] = select(2, pcall(function() json.null.x = 1 end))
          return {errors = r}
        end
        """,
        strict=True,
    )
    errors = engine.call_hook("x", {})["errors"]
    assert errors[0].startswith("json.decode:")
    assert "cannot convert a Lua function" in errors[1]
    assert errors[2].startswith("json.encode:")
    assert "expected a string" in errors[3]
    assert "read-only" in errors[4]


def test_json_null_in_returned_data_becomes_none(make_engine) -> None:
    engine = make_engine("function hook_x(ctx) ctx.cleared = json.null return ctx end")
    assert engine.call_hook("x", {"a": 1}) == {"a": 1, "cleared": None}


def test_special_floats(make_engine) -> None:
    engine = make_engine(
        "function hook_x(ctx) return {inf = ctx.v * 2, nan = 0/0, neg = -0.0} end", strict=True
    )
    out = engine.call_hook("x", {"v": math.inf})
    assert out["inf"] == math.inf and math.isnan(out["nan"]) and math.copysign(1, out["neg"]) == -1
