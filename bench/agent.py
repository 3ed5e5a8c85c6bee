"""Framework overhead per model request, and the time the bash sandbox adds per call.

One agent request round (stream a short answer with one tool call from the scripted server, run
the tool, store everything) minus the same HTTP exchange done with a bare httpx client, medians
over the same run. Target <= 5 ms.

The sandbox: the real bash tool runs the same command (`true`) under bubblewrap and without it,
in turns in the same run; the difference of the medians is the time the sandbox adds. Target
<= 15 ms. Skipped (with the reason) where bubblewrap cannot run.

`--json` prints {"overhead_ms_median": ..., "sandbox_added_ms_median": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--bash-calls", type=int, default=40, help="bash calls on each side of the sandbox figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sandbox = measure_sandbox(args.bash_calls)

    import httpx

    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current
    from pando_core.testing.model_server import Reply, ScriptedModelServer
    from pando_core.testing.pytest_plugin import write_model_config

    workdir = Path(tempfile.mkdtemp(prefix="pando-bench-agent-"))
    os.environ["HOME"] = str(workdir)
    server = ScriptedModelServer()
    server.start()
    write_model_config(workdir, server.base_url)
    (workdir / "a.txt").write_text("x\n")
    context = PandoContext(workdir, requested_plugins=[], env=dict(os.environ))
    set_current(context)
    app = App.create(context, AppOptions(startup_mode="run", yolo=True))
    tool_reply = Reply.tool("view", {"file_path": "a.txt"}, text="checking")

    async def agent_round() -> float:
        session = app.sessions.create(title="bench")
        server.script(tool_reply, Reply.text("done"))
        start = time.perf_counter()
        result = await app.coder_agent.run(session["id"], "look at a.txt")
        elapsed = time.perf_counter() - start
        assert result.status == "success", result.error
        return elapsed

    async def bare_round(client: httpx.AsyncClient) -> float:
        server.script(tool_reply, Reply.text("done"))
        start = time.perf_counter()
        for body in request_bodies:
            async with client.stream("POST", server.base_url + "/chat/completions", json=body) as response:
                async for _line in response.aiter_lines():
                    pass
        return time.perf_counter() - start

    async def run() -> tuple[list[float], list[float]]:
        agent, bare = [], []
        async with httpx.AsyncClient(headers={"Authorization": "Bearer test"}) as client:
            for _ in range(3):
                await agent_round()
                await bare_round(client)
            for _ in range(args.rounds):
                agent.append(await agent_round())
                bare.append(await bare_round(client))
        return agent, bare

    # the bare baseline replays the very two requests an agent round sends (the second one carries
    # the tool call and its result)
    asyncio.run(agent_round())
    request_bodies = [{**body, "stream": True} for body in server.requests[-2:]]
    agent, bare = asyncio.run(run())
    app.shutdown()
    server.stop()
    agent_ms, bare_ms = statistics.median(agent) * 1000, statistics.median(bare) * 1000
    # one agent round = two model requests (tool call, then the answer)
    overhead = (agent_ms - bare_ms) / 2
    result = {
        "overhead_ms_median": round(overhead, 3),
        "agent_round_ms_median": round(agent_ms, 3),
        "bare_http_ms_median": round(bare_ms, 3),
        "requests_per_round": 2,
        **sandbox,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"agent round (2 requests + tool + storage): {agent_ms:.2f} ms median")
        print(f"bare httpx, same 2 exchanges:              {bare_ms:.2f} ms median")
        print(f"framework overhead per request:            {overhead:.2f} ms (target <= 5)")
        if sandbox.get("sandbox_skipped"):
            print(f"bash sandbox: skipped ({sandbox['sandbox_skipped']})")
        else:
            print(f"bash `true`, unsandboxed:                  {sandbox['bash_unsandboxed_ms_median']:.2f} ms median")
            print(f"bash `true`, under bubblewrap:             {sandbox['bash_sandboxed_ms_median']:.2f} ms median")
            print(
                f"time added per bash call by the sandbox:   {sandbox['sandbox_added_ms_median']:.2f} ms "
                f"(x{sandbox['sandbox_ratio']:.2f}; target <= 15)"
            )
    return 0


def measure_sandbox(calls: int) -> dict:
    """The same bash call through the real bash tool with and without bubblewrap, in turns."""
    from pando_core.agent.tools.base import ToolContext
    from pando_core.agent.tools.bash import BashTool
    from pando_core.agent.tools.sandbox import SandboxSettings, probe

    found = probe()
    if not found.works:
        return {"sandbox_skipped": found.problem}
    workdir = Path(tempfile.mkdtemp(prefix="pando-bench-sandbox-"))
    tools = {
        "off": BashTool(sandbox=SandboxSettings(mode="off")),
        "bwrap": BashTool(sandbox=SandboxSettings(mode="bwrap")),
    }
    ctx = ToolContext(workdir=workdir, session_id="bench-sandbox")
    times: dict[str, list[float]] = {"off": [], "bwrap": []}

    async def run() -> None:
        for index in range(calls + 3):
            for mode, tool in tools.items():
                start = time.perf_counter()
                result = await tool.run({"command": "true"}, ctx)
                elapsed = time.perf_counter() - start
                assert result.metadata["sandboxed"] is (mode == "bwrap"), result.content
                if index >= 3:  # the first rounds warm the caches
                    times[mode].append(elapsed)

    asyncio.run(run())
    off_ms = statistics.median(times["off"]) * 1000
    bwrap_ms = statistics.median(times["bwrap"]) * 1000
    return {
        "bash_unsandboxed_ms_median": round(off_ms, 3),
        "bash_sandboxed_ms_median": round(bwrap_ms, 3),
        "sandbox_added_ms_median": round(bwrap_ms - off_ms, 3),
        "sandbox_ratio": round(bwrap_ms / off_ms, 3),
        "bwrap_version": found.version,
    }


if __name__ == "__main__":
    sys.exit(main())
