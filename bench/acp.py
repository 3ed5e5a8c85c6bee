"""Added latency of the first streamed chunk through ``pando acp``.

The same turn (a short streamed answer from the scripted model server) through two front-ends of
one pando: ``pando acp`` (a session/prompt on a running agent, a new session each round) and
``pando run -f stream-json`` (a process per round, as scripts use it). The rounds alternate between the two paths. Each latency is measured
from the moment the model server picked its reply (the request arrived; the first chunk follows
at once) to the moment the first text chunk's line reached this process, so process start-up is
not counted; a third path, the same stream-json front-end in a warm process (one App, a turn per
line), separates ACP's own cost from the cold start of each ``pando run``. Prints the medians and the ACP path's added latency; target <= 5 ms at the median.
`--json` prints {"acp_first_chunk_ms_median", "run_first_chunk_ms_median", "added_ms_median", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEADLINE_S = 60.0


def _stamped_lines(stream: Any, into: queue.Queue) -> None:
    for line in stream:
        into.put((time.perf_counter(), line))


def _next(lines: queue.Queue, predicate) -> tuple[float, dict]:  # noqa: ANN001
    deadline = time.monotonic() + DEADLINE_S
    while True:
        stamp, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        try:
            frame = json.loads(line)
        except ValueError:
            continue
        if predicate(frame):
            return stamp, frame


def _is_chunk(frame: dict) -> bool:
    return frame.get("method") == "session/update" and frame["params"]["update"].get("sessionUpdate") == "agent_message_chunk"


class AcpAgent:
    """One ``pando acp`` process, spoken to frame by frame."""

    def __init__(self, workdir: Path, env: dict) -> None:
        self.workdir = workdir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pando_core", "acp"], cwd=workdir, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=_stamped_lines, args=(self.process.stdout, self.lines), daemon=True).start()
        self._ids = iter(range(1, 1_000_000))
        self.reply(self.request("initialize", {"protocolVersion": 1}))

    def request(self, method: str, params: dict) -> int:
        request_id = next(self._ids)
        frame = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        self.process.stdin.write(json.dumps(frame).encode() + b"\n")
        self.process.stdin.flush()
        return request_id

    def reply(self, request_id: int) -> dict:
        return _next(self.lines, lambda f: f.get("id") == request_id and "method" not in f)[1]

    def first_chunk_ms(self, server: Any, index: int) -> float:
        """A turn in a new session; ms from the model's reply to the first chunk's frame."""
        session = self.reply(self.request("session/new", {"cwd": str(self.workdir), "mcpServers": []}))["result"]["sessionId"]
        prompt = self.request("session/prompt", {"sessionId": session, "prompt": [{"type": "text", "text": f"round {index}"}]})
        chunk_at, _ = _next(self.lines, _is_chunk)
        picked_at = server.picked[-1]
        self.reply(prompt)
        return (chunk_at - picked_at) * 1000

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()


# A warm `pando run -f stream-json`: one process, one App, a turn per prompt line on stdin
# (the same code path as `pando run`, without its process start-up in every round).
WARM_RUN = """
import sys
from pando_core.app import App, AppOptions
from pando_core.context import PandoContext
with App.running(PandoContext(sys.argv[1]), AppOptions(startup_mode="run")) as app:
    print('{"type": "ready"}', flush=True)
    for line in sys.stdin:
        app.run_non_interactive(line.strip(), output_format="stream-json", quiet=True)
"""


class WarmRun:
    def __init__(self, workdir: Path, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WARM_RUN, str(workdir)], cwd=workdir, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=_stamped_lines, args=(self.process.stdout, self.lines), daemon=True).start()
        _next(self.lines, lambda f: f.get("type") == "ready")

    def first_chunk_ms(self, server: Any, index: int) -> float:
        self.process.stdin.write(f"round {index}\n".encode())
        self.process.stdin.flush()
        chunk_at, _ = _next(self.lines, lambda f: f.get("type") == "text_delta")
        latency = (chunk_at - server.picked[-1]) * 1000
        _next(self.lines, lambda f: f.get("type") == "result")
        return latency

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_first_chunk_ms(workdir: Path, env: dict, server: Any, index: int) -> float:
    """A ``pando run -f stream-json`` process; ms from the model's reply to the first text_delta line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pando_core", "run", "-f", "stream-json", "-q", f"round {index}"],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_stamped_lines, args=(process.stdout, lines), daemon=True).start()
    chunk_at, _ = _next(lines, lambda f: f.get("type") == "text_delta")
    latency = (chunk_at - server.picked[-1]) * 1000
    process.wait(timeout=DEADLINE_S)
    return latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pando_core.testing.model_server import Reply, ScriptedModelServer
    from pando_core.testing.pytest_plugin import write_model_config

    class StampingServer(ScriptedModelServer):
        """Notes when it picks each reply: the request has arrived and the first chunk follows."""

        picked: list[float] = []

        def _choose(self, body: dict) -> Any:
            self.picked.append(time.perf_counter())
            return super()._choose(body)

    workdir = Path(tempfile.mkdtemp(prefix="pando-bench-acp-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANDO_")}
    env.update(HOME=str(workdir), PANDO_PLUGINS="acp", OPENAI_API_KEY="", ANTHROPIC_API_KEY="")
    server = StampingServer(default=Reply.text("The first chunk, then a few more of them.", chunk_size=8))
    server.start()
    try:
        write_model_config(workdir, server.base_url)
        warm_dir = workdir / "warm"  # its own directory: both warm processes are primaries
        warm_dir.mkdir()
        write_model_config(warm_dir, server.base_url)
        agent, warm = AcpAgent(workdir, env), WarmRun(warm_dir, env)
        try:
            agent.first_chunk_ms(server, -1)  # both warm their provider connection up
            warm.first_chunk_ms(server, -1)
            run, warm_run, via_acp = [], [], []
            for index in range(args.rounds):  # interleaved: every path sees the same machine load
                run.append(run_first_chunk_ms(workdir, env, server, index))
                warm_run.append(warm.first_chunk_ms(server, index))
                via_acp.append(agent.first_chunk_ms(server, index))
        finally:
            agent.close()
            warm.close()
    finally:
        server.stop()
    acp_ms, run_ms, warm_ms = (statistics.median(v) for v in (via_acp, run, warm_run))
    result = {
        "rounds": args.rounds,
        "acp_first_chunk_ms_median": round(acp_ms, 3),
        "run_first_chunk_ms_median": round(run_ms, 3),
        "warm_run_first_chunk_ms_median": round(warm_ms, 3),
        "added_ms_median": round(acp_ms - run_ms, 3),
        "added_over_warm_run_ms_median": round(acp_ms - warm_ms, 3),
        "ratio_acp_over_run": round(acp_ms / run_ms, 3),
        "ratio_acp_over_warm_run": round(acp_ms / warm_ms, 3),
        "target_added_ms": 5.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"first chunk after the model's reply, median of {args.rounds} rounds:")
        print(f"  pando run -f stream-json  {result['run_first_chunk_ms_median']:8.2f} ms")
        print(f"  the same, warm process    {result['warm_run_first_chunk_ms_median']:8.2f} ms")
        print(f"  pando acp                 {result['acp_first_chunk_ms_median']:8.2f} ms")
        print(f"  added by ACP              {result['added_ms_median']:8.2f} ms over pando run (ratio {result['ratio_acp_over_run']}), "
              f"{result['added_over_warm_run_ms_median']:.2f} ms over the warm one (ratio {result['ratio_acp_over_warm_run']}); target <= 5 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
