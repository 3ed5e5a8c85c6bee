"""A real pando instance for the two-instance tests, driven by JSON lines on stdin.

    python instance_driver.py WORKDIR

builds an App with the evaluator on WORKDIR (primary or secondary, as the lock decides), prints
``{"ready": ROLE, "instance_id": ID, "pid": PID}`` and then answers one JSON line per command:

    {"cmd": "session", "prompt": "..."}   a coder-agent turn, then the session's end
    {"cmd": "evaluate", "session_id": ID} pando evaluator evaluate, as the CLI does it
    {"cmd": "role"}                      this instance's role now
    {"cmd": "quit"}                      shut down and exit
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path


def reply(value: dict) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")
    sys.stdout.flush()


def main() -> int:
    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current

    context = PandoContext(Path(sys.argv[1]), requested_plugins=["evaluator"])
    set_current(context)
    app = App.create(context, AppOptions(startup_mode="run"))
    reply({"ready": app.role, "instance_id": app.instance_id, "pid": __import__("os").getpid()})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                if command["cmd"] == "session":
                    session = app.sessions.create(title="t")
                    asyncio.run(app.coder_agent.run(session["id"], command["prompt"]))
                    start = time.perf_counter()
                    app.sessions.end(session["id"])
                    reply({"session_id": session["id"], "end_ms": (time.perf_counter() - start) * 1000})
                elif command["cmd"] == "evaluate":
                    from pando_evaluator.methods import request_evaluation

                    reply({"result": request_evaluation(app, command["session_id"])})
                elif command["cmd"] == "role":
                    reply({"role": app.role})
                elif command["cmd"] == "quit":
                    reply({"bye": True})
                    break
            except Exception as exc:  # noqa: BLE001 - reported to the test
                reply({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        app.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
