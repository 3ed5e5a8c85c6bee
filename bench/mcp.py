"""Added time of an MCP tool call through pando's tool path, over the bare SDK client.

Against server-everything's `echo` over stdio (one server process per client): pando's path is a
direct-mode agent tool (`McpTool.run` awaited on the caller's event loop, handed to the pool's
loop thread, the pooled session, result conversion, the core's result pager); the baseline is
`await mcp.Client.call_tool` on one event loop. Calls alternate between the two in the same run;
medians per call and their difference (target <= 1 ms added). Also: the first call of a fresh pool
(spawn + initialize + call) against later calls. `--json` prints the figures as JSON.

    python bench/mcp.py [--calls 300] [--fresh 3] [--json]

The binary is found through $PANDO_TEST_SERVER_EVERYTHING, .ci-tools/ or PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# this file is named mcp.py: its folder first on sys.path would hide the SDK package of that name
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def everything_binary() -> str:
    for candidate in (
        os.environ.get("PANDO_TEST_SERVER_EVERYTHING", ""),
        str(REPO / ".ci-tools" / "node_modules" / ".bin" / "mcp-server-everything"),
        shutil.which("mcp-server-everything") or "",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("server-everything not found: npm install --prefix .ci-tools @modelcontextprotocol/server-everything")


async def measure(binary: str, calls: int) -> tuple[list[float], list[float]]:
    from mcp import Client, StdioServerParameters
    from pando_mcp.client import McpPool
    from pando_mcp.config import server_spec
    from pando_mcp.tools import direct_tools

    from pando_core.agent.tools.base import ToolContext
    from pando_core.agent.tools.paging import ResultPager, wrap_large_result

    logs = Path(tempfile.mkdtemp(prefix="pando-bench-mcp-"))
    pool = McpPool([server_spec("everything", {"command": binary, "args": ["stdio"]}, "bench", os.environ)], logs)
    found = await pool.run_async(pool.discover())
    [echo] = [tool for tool in direct_tools(pool, found) if tool.name == "everything_echo"]
    ctx = ToolContext(workdir=logs, session_id="bench")
    pager = ResultPager()
    pando_ms, bare_ms = [], []
    devnull = open(os.devnull, "w")  # noqa: SIM115
    from mcp.client.stdio import stdio_client

    target = stdio_client(StdioServerParameters(command=binary, args=["stdio"]), errlog=devnull)
    async with Client(target, mode="legacy", cache=None) as bare:
        for warm in range(20):  # both paths warmed the same
            await bare.call_tool("echo", {"message": f"w{warm}"})
            await echo.run({"message": f"w{warm}"}, ctx)
        for i in range(calls):
            started = time.perf_counter()
            result = await echo.run({"message": f"m{i}"}, ctx)
            wrap_large_result(result, ctx, pager, echo.name)
            pando_ms.append((time.perf_counter() - started) * 1000)
            assert result.content == f"Echo: m{i}", result.content
            started = time.perf_counter()
            answer = await bare.call_tool("echo", {"message": f"m{i}"})
            bare_ms.append((time.perf_counter() - started) * 1000)
            assert answer.content[0].text == f"Echo: m{i}"
    pool.close()
    devnull.close()
    return pando_ms, bare_ms


def first_calls(binary: str, fresh: int) -> tuple[list[float], list[float]]:
    """(first call of a fresh pool, the calls after it) in ms."""
    from pando_mcp.client import McpPool
    from pando_mcp.config import server_spec

    first, later = [], []
    for n in range(fresh):
        pool = McpPool([server_spec("everything", {"command": binary, "args": ["stdio"]}, "bench", os.environ)])
        started = time.perf_counter()
        pool.run_sync(pool.call_tool("everything", "echo", {"message": f"first{n}"}))
        first.append((time.perf_counter() - started) * 1000)
        for i in range(20):
            started = time.perf_counter()
            pool.run_sync(pool.call_tool("everything", "echo", {"message": f"later{i}"}))
            later.append((time.perf_counter() - started) * 1000)
        pool.close()
    return first, later


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--fresh", type=int, default=3, help="fresh pools for the first-call figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = everything_binary()
    pando_ms, bare_ms = asyncio.run(measure(binary, args.calls))
    first, later = first_calls(binary, args.fresh)
    figures = {
        "calls": args.calls,
        "bare_sdk_median_ms": round(statistics.median(bare_ms), 4),
        "pando_tool_median_ms": round(statistics.median(pando_ms), 4),
        "added_median_ms": round(statistics.median(pando_ms) - statistics.median(bare_ms), 4),
        "ratio_pando_over_bare": round(statistics.median(pando_ms) / statistics.median(bare_ms), 3),
        "first_call_median_ms": round(statistics.median(first), 2),
        "later_call_median_ms": round(statistics.median(later), 4),
        "first_over_later": round(statistics.median(first) / statistics.median(later), 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"bare SDK call        median {figures['bare_sdk_median_ms']:.3f} ms ({args.calls} calls)")
        print(f"pando tool path      median {figures['pando_tool_median_ms']:.3f} ms")
        print(f"added by pando       {figures['added_median_ms']:.3f} ms  (ratio {figures['ratio_pando_over_bare']}; target <= 1 ms)")
        print(f"first call of a pool median {figures['first_call_median_ms']:.1f} ms (spawn + initialize + call)")
        print(f"later calls          median {figures['later_call_median_ms']:.3f} ms  (first/later {figures['first_over_later']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
