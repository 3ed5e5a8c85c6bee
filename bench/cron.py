"""pando-cron: firing delay (scheduled minute to task spawned) and the scheduler's idle CPU.

1. Firing delay: a real App (primary, pando-cron and pando-mesnada, the ``command`` engine running
   ``sh -c "exit 0"``) whose scheduler runs on a ``ScaledClock`` where a minute lasts
   ``--minute-ms`` of real time, with twenty jobs taking turns so that one fires every minute
   (each job's previous task has ended by its next turn, so none is skipped). For each simulated minute: the real
   time from the boundary to the ``cron.fired`` event (published once the task is spawned and
   its fire recorded). p50/p99 over ``--minutes`` minutes; target p99 <= 100 ms. Baseline in the
   same run: ``mesnada.spawn`` of the same task called directly (p50), and the ratio.
2. Idle CPU: the same scheduler on the real clock with a yearly job, for ``--idle-seconds``
   (default 60): CPU seconds used by the scheduler's thread alone (/proc/self/task/TID/stat),
   as a percentage of one core, and its wake-ups.

``--json`` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROTATION = 20  # jobs taking turns, one per minute: each job's last task has ended before its next turn


def _app(workdir: Path, schedules: list[str]):
    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext, set_current

    (workdir / ".pando.toml").write_text(
        "".join(
            f'[[cron.jobs]]\nname = "bench-{i}"\nschedule = "{schedule}"\nprompt = "exit 0"\nengine = "command"\ntimezone = "UTC"\n'
            for i, schedule in enumerate(schedules)
        )
    )
    context = PandoContext(workdir, requested_plugins=["cron", "mesnada"])
    set_current(context)
    return App.create(context, AppOptions(startup_mode="bench", background_work=True))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def firing_delay(minutes: int, minute_ms: float) -> dict:
    from pando_cron import clock

    speed = 60_000.0 / minute_ms
    start = (time.time() // 60 + 10_000) * 60 - 0.5 * speed / 1000  # half a real second before a boundary
    scaled = clock.install(clock.ScaledClock(start, speed))
    app = _app(
        Path(tempfile.mkdtemp(prefix="pando-bench-cron-")),
        [f"{i}-59/{ROTATION} * * * *" for i in range(ROTATION)],
    )
    delays: list[float] = []
    skipped = 0
    done = threading.Event()

    def heard(event) -> None:
        nonlocal skipped
        fire = event.payload["fire"]
        if event.topic == "cron.skipped":
            skipped += 1
        else:
            delays.append(scaled.real_delay(fire["scheduled_at"] / 1000, scaled.now()))
        if len(delays) + skipped >= minutes:
            done.set()

    app.events.subscribe("cron.fired", heard)
    app.events.subscribe("cron.skipped", heard)
    try:
        done.wait(minutes * minute_ms / 1000 + 30)
        baseline = []
        for _ in range(20):
            began = time.perf_counter()
            app.call_primary("mesnada.spawn", {"prompt": "exit 0", "engine": "command", "tags": ["bench"]})
            baseline.append(time.perf_counter() - began)
    finally:
        app.shutdown()
        clock.install(None)
    if not delays:
        raise RuntimeError("no job fired")
    p50 = statistics.median(delays)
    spawn = statistics.median(baseline)
    return {
        "minutes": minutes,
        "fired": len(delays),
        "skipped": skipped,
        "delay_p50_ms": round(p50 * 1000, 1),
        "delay_p99_ms": round(_percentile(delays, 0.99) * 1000, 1),
        "delay_max_ms": round(max(delays) * 1000, 1),
        "direct_spawn_p50_ms": round(spawn * 1000, 1),
        "ratio_p50_to_direct_spawn": round(p50 / spawn, 2),
    }


def _thread_cpu(tid: int) -> float:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(seconds: float) -> dict:
    app = _app(Path(tempfile.mkdtemp(prefix="pando-bench-cron-idle-")), ["@yearly"])
    try:
        service = app.services.get("cron")
        deadline = time.monotonic() + 10
        while service.passes == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        tid = service._thread.native_id
        cpu0, passes0, began = _thread_cpu(tid), service.passes, time.monotonic()
        time.sleep(seconds)  # the measurement window itself, not a synchronisation
        cpu, wakeups, elapsed = _thread_cpu(tid) - cpu0, service.passes - passes0, time.monotonic() - began
    finally:
        app.shutdown()
    return {
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent_of_one_core": round(100 * cpu / elapsed, 3),
        "wakeups": wakeups,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=200, help="simulated minutes to fire")
    parser.add_argument(
        "--minute-ms", type=float, default=250.0, help="real milliseconds per simulated minute"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="how long to measure the idle scheduler"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("PANDO_MESNADA__COMMAND", "sh -c {prompt}")
    os.environ.setdefault("PANDO_MESNADA__POLL_INTERVAL", "0.05")
    figures = {"firing": firing_delay(args.minutes, args.minute_ms), "idle": idle_cpu(args.idle_seconds)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    fire, idle = figures["firing"], figures["idle"]
    print(
        f"firing delay over {fire['minutes']} simulated minutes ({fire['fired']} fired, {fire['skipped']} skipped): "
        f"p50 {fire['delay_p50_ms']} ms, p99 {fire['delay_p99_ms']} ms (target <= 100), max {fire['delay_max_ms']} ms; "
        f"direct mesnada.spawn p50 {fire['direct_spawn_p50_ms']} ms, ratio {fire['ratio_p50_to_direct_spawn']}x"
    )
    print(
        f"idle scheduler over {idle['seconds']} s: {idle['cpu_seconds']} CPU s "
        f"({idle['cpu_percent_of_one_core']}% of a core), {idle['wakeups']} wake-ups"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
