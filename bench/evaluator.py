"""What the evaluator costs: at the end of a session, and per evaluation (judge off).

1. End of `pando run`: the `pando_session_ended` hooks of an App with the evaluator (the session
   is queued: one write, the evaluation itself is the primary service's) minus the same hooks
   without it, medians, on the primary (this process) and on a secondary (a real second pando
   process, whose write is proxied to the primary). Target <= 5 ms. Baseline in the same run:
   one core write (`sessions.update`) from the same instance.
2. One evaluation with the judge off (read the session and its messages, reward, store the score
   in one transaction) on sessions of `--messages` messages; baseline: reading those messages.

`--json` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _app(workdir: Path, plugins: list[str], extra: str = ""):
    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".pando.toml").write_text(extra, encoding="utf-8")
    context = PandoContext(workdir, requested_plugins=plugins, env=dict(os.environ))
    set_current(context)
    return App.create(context, AppOptions(startup_mode="run"))


def _session(app, messages: int) -> dict:
    session = app.sessions.create(title="bench")
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        text = "please change the parser, that's wrong" if i == 2 else f"message {i} " + "word " * 40
        app.store.messages.create(session_id=session["id"], role=role, parts=[{"type": "text", "data": {"text": text}}])
    app.store.sessions.add_usage(id=session["id"], prompt_tokens=900 + messages, completion_tokens=300, cost=0.0)
    return app.store.sessions.get(id=session["id"])


SECONDARY_TIMING = """
import statistics, time
ends, writes = [], []
for _ in range(ROUNDS):
    session = app.sessions.create(title="bench")
    app.store.messages.create(session_id=session["id"], role="user", parts=[{"type": "text", "data": {"text": "hi"}}])
    session = app.store.sessions.get(id=session["id"])
    start = time.perf_counter()
    app.plugins.hooks.pando_session_ended(app=app, session=session, origin=app.instance_id)
    ends.append(time.perf_counter() - start)
    start = time.perf_counter()
    app.store.sessions.update(id=session["id"], title="renamed")
    writes.append(time.perf_counter() - start)
result = {"role": app.role, "end_ms": statistics.median(ends) * 1000, "write_ms": statistics.median(writes) * 1000}
"""


def _secondary_figures(workdir: Path, rounds: int) -> dict:
    """The same hook timed inside a real secondary pando process on the same working directory."""
    from pando_core.testing.instances import PandoInstance

    instance = PandoInstance(workdir, plugins=["evaluator"], env=dict(os.environ)).start()
    try:
        figures = instance.eval(f"ROUNDS = {rounds}\n" + SECONDARY_TIMING, timeout=300)
    finally:
        instance.stop()
    assert figures["role"] == "secondary", figures
    return {"end_ms": round(figures["end_ms"], 4), "write_ms": round(figures["write_ms"], 4)}


def _wait_until_evaluated(app, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while app.store.evaluator.pending() and time.monotonic() < deadline:
        time.sleep(0.05)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pando_evaluator.service import evaluate_now

    root = Path(tempfile.mkdtemp(prefix="pando-bench-evaluator-"))
    os.environ["HOME"] = str(root)
    settings = '[evaluator]\njudge = false\nidle_minutes = 0\n[snapshots]\nenabled = false\n'

    with_app = _app(root / "with", ["evaluator"], settings)
    without_app = _app(root / "without", [], settings)
    try:
        end_with, end_without, core_write = [], [], []
        for _ in range(args.rounds):
            for app, samples in ((with_app, end_with), (without_app, end_without)):
                session = _session(app, 2)
                start = time.perf_counter()
                app.plugins.hooks.pando_session_ended(app=app, session=session, origin=app.instance_id)
                samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            without_app.store.sessions.update(id=session["id"], title="renamed")
            core_write.append(time.perf_counter() - start)

        secondary = _secondary_figures(root / "with", args.rounds)
        _wait_until_evaluated(with_app)  # the service scores the ended sessions; then time alone

        evaluations, reads = [], []
        for _ in range(max(10, args.rounds // 4)):
            session = _session(with_app, args.messages)
            start = time.perf_counter()
            with_app.store.messages.list(session_id=session["id"])
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = evaluate_now(with_app, session["id"], judge=False)
            evaluations.append(time.perf_counter() - start)
            assert result["stored"], result
    finally:
        with_app.shutdown()
        without_app.shutdown()

    added = _median_ms(end_with) - _median_ms(end_without)
    figures = {
        "session_end_with_evaluator_ms": round(_median_ms(end_with), 4),
        "session_end_without_evaluator_ms": round(_median_ms(end_without), 4),
        "session_end_added_ms": round(added, 4),
        "core_write_ms": round(_median_ms(core_write), 4),
        "session_end_added_vs_core_write": round(added / _median_ms(core_write), 2),
        "secondary_session_end_with_evaluator_ms": secondary["end_ms"],
        "secondary_core_write_ms": secondary["write_ms"],
        "secondary_session_end_vs_core_write": round(secondary["end_ms"] / secondary["write_ms"], 2),
        "evaluation_judge_off_ms": round(_median_ms(evaluations), 4),
        "read_messages_ms": round(_median_ms(reads), 4),
        "evaluation_vs_read_messages": round(_median_ms(evaluations) / _median_ms(reads), 2),
        "messages_per_session": args.messages,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"end of a session: +{added:.3f} ms with the evaluator (target <= 5 ms); "
              f"{figures['session_end_added_vs_core_write']}x one core write ({figures['core_write_ms']:.3f} ms)")
        print(f"end of a session on a secondary: {secondary['end_ms']:.3f} ms with the evaluator's hook; "
              f"{figures['secondary_session_end_vs_core_write']}x one proxied core write ({secondary['write_ms']:.3f} ms)")
        print(f"one evaluation, judge off, {args.messages} messages: {figures['evaluation_judge_off_ms']:.3f} ms; "
              f"{figures['evaluation_vs_read_messages']}x reading the messages ({figures['read_messages_ms']:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
