"""Benchmark: added latency of one pando-lua tool-input filter call.

Compares, in the same run and interleaved, the median time of
  * ``engine.call_filter("github-input", args, context=...)`` where the Lua filter edits one field of a
    small args table, and
  * a no-op Python function with the same call shape (name, args, context) that copies the dict and
    edits the same field,
and reports both medians and their difference (the overhead of going through Lua).

    python bench/lua.py [--iterations N] [--rounds R] [--hot-reload] [--json]

``--json`` prints one JSON object with ``filter_overhead_ms_median``, ``lua_call_ms_median`` and
``python_call_ms_median``.  Target: overhead <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = """
_G["github-input"] = function(ctx)
  ctx.parameters.per_page = 20
  return ctx.parameters
end
"""

ARGS = {"owner": "digiogithub", "repo": "pando", "query": "is:open label:bug", "per_page": 10, "page": 1}
CONTEXT = {"tool_name": "search_issues", "session_id": "s-1", "request_id": "r-1"}


def python_filter(
    name: str, data: dict[str, Any], *, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    out = dict(data)
    out["per_page"] = 20
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000, help="calls per round and per variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--hot-reload", action="store_true", help="also do the per-call mtime check")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    opts = parser.parse_args(argv)

    from pando_lua.engine import LuaEngine

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(SCRIPT, encoding="utf-8")
        engine = LuaEngine([script], hot_reload=opts.hot_reload)
        result = engine.call_filter("github-input", ARGS, context=CONTEXT)
        assert result["per_page"] == 20 and result["owner"] == "digiogithub", result
        assert python_filter("github-input", ARGS, context=CONTEXT) == result

        lua_times: list[float] = []
        py_times: list[float] = []
        perf = time.perf_counter_ns
        call_lua = engine.call_filter
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for _ in range(50):  # warm-up
                call_lua("github-input", ARGS, context=CONTEXT)
                python_filter("github-input", ARGS, context=CONTEXT)
            for _ in range(opts.rounds):
                for _ in range(opts.iterations):
                    t0 = perf()
                    call_lua("github-input", ARGS, context=CONTEXT)
                    t1 = perf()
                    python_filter("github-input", ARGS, context=CONTEXT)
                    t2 = perf()
                    lua_times.append(t1 - t0)
                    py_times.append(t2 - t1)
                gc.collect()
        finally:
            if gc_was_enabled:
                gc.enable()
        engine.close()

    lua_ms = statistics.median(lua_times) / 1e6
    py_ms = statistics.median(py_times) / 1e6
    report = {
        "filter_overhead_ms_median": round(lua_ms - py_ms, 5),
        "lua_call_ms_median": round(lua_ms, 5),
        "python_call_ms_median": round(py_ms, 5),
        "lua_call_ms_p95": round(sorted(lua_times)[int(len(lua_times) * 0.95)] / 1e6, 5),
        "calls": len(lua_times),
        "hot_reload_check": opts.hot_reload,
        "target_ms": 0.2,
    }
    if opts.json:
        print(json.dumps(report))
    else:
        print(f"lua filter call     median {lua_ms * 1000:8.2f} us")
        print(f"python no-op call   median {py_ms * 1000:8.2f} us")
        print(f"overhead            median {(lua_ms - py_ms) * 1000:8.2f} us  (target <= 200 us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
