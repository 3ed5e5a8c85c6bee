"""What a configured shell hook costs per tool call, and what the hook machinery costs when none is.

Three agent rounds (one `view` call, then the answer, from the scripted server), medians over the
same run: no hook configured; a PreToolUse hook that matches another tool only (the matcher
checks); a PreToolUse hook `cat >/dev/null` on every call. The baseline is the bare cost of
starting that command with `/bin/sh -c` and its JSON on stdin (subprocess.run), measured in the
same run: a matching hook should add about one such start. `--json` prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOOK = "cat >/dev/null"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current
    from pando_core.testing.model_server import Reply, ScriptedModelServer
    from pando_core.testing.pytest_plugin import write_model_config

    root = Path(tempfile.mkdtemp(prefix="pando-bench-hooks-"))
    os.environ["HOME"] = str(root)
    server = ScriptedModelServer()
    server.start()
    hooks = {
        "none": "",
        "other_tool": f'\n[[hooks.PreToolUse]]\nmatcher = "Bash"\nhooks = [{{ command = "{HOOK}" }}]\n',
        "matching": f'\n[[hooks.PreToolUse]]\nmatcher = "*"\nhooks = [{{ command = "{HOOK}" }}]\n',
    }
    apps = {}
    for name, extra in hooks.items():
        workdir = root / name
        workdir.mkdir()
        write_model_config(workdir, server.base_url, extra=extra)
        (workdir / "a.txt").write_text("x\n")
        context = PandoContext(workdir, requested_plugins=[], env=dict(os.environ))
        set_current(context)
        apps[name] = App.create(context, AppOptions(startup_mode="run", yolo=True))
    tool_reply = Reply.tool("view", {"file_path": "a.txt"})

    async def agent_round(app) -> float:  # noqa: ANN001
        session = app.sessions.create(title="bench")
        server.script(tool_reply, Reply.text("done"))
        start = time.perf_counter()
        result = await app.coder_agent.run(session["id"], "look at a.txt")
        elapsed = time.perf_counter() - start
        assert result.status == "success", result.error
        return elapsed

    payload = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {"file_path": "a.txt"}}).encode()

    def bare_start() -> float:
        start = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", HOOK], input=payload, capture_output=True, check=True)
        return time.perf_counter() - start

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name in [*apps, "bare_start"]}
        for warm in (True, False):
            for _ in range(3 if warm else args.rounds):
                for name, app in apps.items():
                    elapsed = await agent_round(app)
                    if not warm:
                        times[name].append(elapsed)
                elapsed = bare_start()
                if not warm:
                    times["bare_start"].append(elapsed)
        return times

    times = asyncio.run(run())
    for app in apps.values():
        app.shutdown()
    server.stop()
    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    added = ms["matching"] - ms["none"]
    result = {
        "round_no_hook_ms_median": round(ms["none"], 3),
        "round_other_tool_hook_ms_median": round(ms["other_tool"], 3),
        "round_matching_hook_ms_median": round(ms["matching"], 3),
        "matcher_only_added_ms": round(ms["other_tool"] - ms["none"], 3),
        "matching_hook_added_ms": round(added, 3),
        "bare_sh_start_ms_median": round(ms["bare_start"], 3),
        "added_vs_bare_start_ratio": round(added / ms["bare_start"], 2) if ms["bare_start"] else None,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"agent round, no hook:                       {ms['none']:.2f} ms median")
        print(f"agent round, a hook for another tool:       {ms['other_tool']:.2f} ms median")
        print(f"agent round, a matching hook ({HOOK}): {ms['matching']:.2f} ms median")
        print(f"bare /bin/sh -c '{HOOK}' with JSON stdin:   {ms['bare_start']:.2f} ms median")
        print(f"a matching hook adds {added:.2f} ms = {result['added_vs_bare_start_ratio']}x a bare start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
