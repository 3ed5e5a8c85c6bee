"""A pando instance for the reliability tests: bootstraps in a workdir and follows orders.

Run as ``python worker.py --workdir W --id NAME [options]``.  Every line on stdout is one JSON
object with ``ev`` (what happened), ``id`` (this worker), ``pid``, ``t`` (``time.time_ns()``) and
``m`` (``time.monotonic_ns()``, system-wide on Linux, so comparable between processes).

Events: ``lock`` (this process won the instance lock, logged right after flock returned),
``ready`` (bootstrap returned: role, epoch), ``role`` (promoted), ``tick`` (still primary, holding
the lock), ``invoke``/``ok``/``fail`` (write loop), ``event`` (a ``db.sessions.*`` or
``state.resync`` event seen by ``on_event``), ``reply`` (answer to a stdin command), ``stopped`` (write loop ended), ``bye``.

Commands, one JSON object per stdin line (``op``): ``write`` (``sid``: create that session),
``writes`` (``n``, ``prefix``: create n sessions, reply once; ``pipeline``: through
``store.pipeline(batch_size=pipeline)``), ``pipeline`` (``ids``, ``batch``: create
those sessions through ``store.pipeline``, reply with every outcome), ``bus_stats`` (the primary's bus counters), ``ensure_primary``
(``timeout``), ``role`` (role, epoch, resyncs), ``publish`` (``topic``, ``payload``: on the
primary's bus), ``publish_change`` (``topic``, ``payload``), ``lose_change`` (the primary's bus skips a
change_seq), ``call`` (``method``, ``params``, ``timeout``, ``pad``: ``rt.client.call``),
``break_io`` (the bus I/O thread dies at its next round), ``timed_writes`` (``prefix``, ``n``:
each write's latency in ms), ``stop_writes``, ``cleanup``, ``exit``.  EOF on stdin = ``cleanup``
then exit.  ``--memory-limit-mb N`` caps the address space at what is in use + N MiB.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback

_out_lock = threading.Lock()
NAME = "?"


def emit(ev: str, **fields) -> None:
    record = {
        "ev": ev,
        "id": NAME,
        "pid": os.getpid(),
        "t": time.time_ns(),
        "m": time.monotonic_ns(),
        **fields,
    }
    line = json.dumps(record, default=str) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _instrument_lock() -> None:
    """Log the moment this process wins the instance lock (the start of its writer interval)."""
    from pando_core.runtime import lock as lock_mod

    original = lock_mod.InstanceLock._attempt

    def _attempt(self, timeout, cancel):
        won = original(self, timeout, cancel)
        if won:
            emit("lock")
        return won

    lock_mod.InstanceLock._attempt = _attempt


def _error_fields(exc: BaseException) -> dict:
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "kind": getattr(exc, "kind", None),
        "type": type(exc).__name__,
    }


DEFINITIVE_KINDS = {"not_found", "constraint", "validation"}


class WriteLoop:
    """Writes keyed records as fast as it can, logging invoke / ok / fail for each.

    Even n: ``sessions.create(id=f"{name}-{n}")``; odd n: a message in session ``{name}-{n-1}``
    whose text is ``{name}-{n}`` (message ids are made by the primary, so only the idempotency
    key can keep a retried message from being stored twice).
    """

    def __init__(self, rt, name: str, limit: int | None, pipeline: int = 0) -> None:
        self.rt = rt
        self.name = name
        self.limit = limit
        self.pipeline = pipeline  # > 0: writes go through store.pipeline(batch_size=pipeline)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="worker-writes", daemon=True)

    def _issue(self, target, n: int):  # noqa: ANN001 - the store, or a pipeline
        key = f"{self.name}-{n}"
        if n % 2 == 0:
            return target.sessions.create(id=key, title=f"write {key}")
        return target.messages.create(
            session_id=f"{self.name}-{n - 1}", role="user", parts=[{"type": "text", "text": key}]
        )

    def _record(self, n: int, outcome) -> bool:  # noqa: ANN001 - a zero-argument call giving the result
        key = f"{self.name}-{n}"
        try:
            outcome()
        except Exception as exc:  # noqa: BLE001 - every outcome is recorded
            kind = getattr(exc, "kind", None)
            emit("fail", key=key, n=n, definitive=kind in DEFINITIVE_KINDS, role=self.rt.role, **_error_fields(exc))
            return False
        emit("ok", key=key, n=n, role=self.rt.role, epoch=self.rt.epoch)
        return True

    def run(self) -> None:
        n = 0
        acked = 0
        while not self.stop.is_set() and (self.limit is None or n < self.limit):
            if self.pipeline:
                count = self.pipeline if self.limit is None else min(self.pipeline, self.limit - n)
                pipe = self.rt.store.pipeline(batch_size=self.pipeline)
                issued = []
                for i in range(n, n + count):
                    emit("invoke", key=f"{self.name}-{i}", n=i)
                    issued.append((i, self._issue(pipe, i)))
                pipe.flush()
                acked += sum(self._record(i, pending.result) for i, pending in issued)
                n += count
                continue
            emit("invoke", key=f"{self.name}-{n}", n=n)
            acked += self._record(n, lambda n=n: self._issue(self.rt.store, n))
            n += 1
        emit("stopped", invoked=n, acked=acked)


def _primary_ticks(rt, stop: threading.Event) -> None:
    while not stop.wait(0.02):
        if rt.role == "primary" and rt.lock.held:
            emit("tick", epoch=rt.epoch)


def _lock_only(workdir: str) -> None:
    """Hold the instance lock without ever starting a primary, until stdin says release."""
    from pando_core.runtime.lock import InstanceLock

    lock = InstanceLock(os.path.join(workdir, ".pando"))
    if not lock.try_acquire():
        emit("lock_busy")
        return
    emit("locked")
    sys.stdin.readline()
    lock.release()
    emit("released")
    sys.stdin.readline()


def main() -> None:
    global NAME
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--no-failover", action="store_true")
    parser.add_argument("--write-loop", action="store_true")
    parser.add_argument("--max-writes", type=int)
    parser.add_argument("--pipeline", type=int, default=0, help="write loop: batches of this many through store.pipeline")
    parser.add_argument(
        "--write-once", action="store_true", help="create session <id>-boot right after bootstrap"
    )
    parser.add_argument(
        "--echo", action="store_true", help="serve echo.ping whenever this instance is primary"
    )
    parser.add_argument("--events", action="store_true", help="print db.sessions.* events seen by on_event")
    parser.add_argument("--ticks", action="store_true", help="print a tick every 20 ms while primary")
    parser.add_argument("--lock-only", action="store_true")
    parser.add_argument("--database-url", help="team mode: write to this PostgreSQL database")
    parser.add_argument(
        "--memory-limit-mb", type=int, help="after bootstrap: RLIMIT_AS = address space in use + this many MiB"
    )
    args = parser.parse_args()
    NAME = args.id
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=f"[{NAME}] %(name)s: %(message)s")

    if args.lock_only:
        _lock_only(args.workdir)
        return

    _instrument_lock()
    from pando_core.runtime.bootstrap import bootstrap

    config = json.loads(args.config)
    emit("starting")
    database = None
    if args.database_url:
        from pando_core.db import DatabaseSettings

        database = DatabaseSettings(args.database_url)
    rt = bootstrap(args.workdir, instance_id=args.id, failover=not args.no_failover, config=config, database=database)

    def register_echo(runtime) -> None:
        def echo(params, call):
            return {
                "echo": params,
                "served_by": runtime.instance_id,
                "epoch": runtime.epoch,
                "pid": os.getpid(),
            }

        runtime.bus.register("echo.ping", echo, params="object", replace=True)
        emit("echo_registered", epoch=runtime.epoch)

    def promoted(runtime) -> None:
        emit("role", role=runtime.role, epoch=runtime.epoch)
        if args.echo:
            register_echo(runtime)

    rt.on_promoted(promoted)
    if args.events:

        def on_event(event) -> None:
            emit("event", topic=event.topic, seq=event.seq, epoch=event.epoch, payload=event.payload)

        rt.on_event(on_event, "db.sessions.")  # (state.resync events come too)
    if args.echo and rt.role == "primary":
        register_echo(rt)

    if args.memory_limit_mb:
        _limit_memory(args.memory_limit_mb)
    ready = {
        "role": rt.role,
        "epoch": rt.epoch,
        "instance": rt.instance_id,
        "endpoints": rt.endpoints.to_dict(),
    }
    if rt.role == "secondary" and rt.client is not None:
        ready["heartbeat_seen"] = _wait_heartbeat(rt, 5.0)
    emit("ready", **ready)

    if args.write_once:
        try:
            row = rt.store.sessions.create(id=f"{args.id}-boot", title=f"boot write of {args.id}")
            emit("ok", key=row["id"], role=rt.role, epoch=rt.epoch)
        except Exception as exc:  # noqa: BLE001
            emit("fail", key=f"{args.id}-boot", **_error_fields(exc))

    stop_ticks = threading.Event()
    if args.ticks:
        threading.Thread(target=_primary_ticks, args=(rt, stop_ticks), daemon=True).start()
    loop = None
    if args.write_loop:
        loop = WriteLoop(rt, args.id, args.max_writes, args.pipeline)
        loop.thread.start()

    done = threading.Event()

    def shutdown(reason: str) -> None:
        if done.is_set():
            return
        done.set()
        if loop is not None:
            loop.stop.set()
            loop.thread.join(30)
        stop_ticks.set()
        role = rt.role
        emit("cleanup_start", role=role, epoch=rt.epoch, reason=reason)
        rt.cleanup()
        emit("bye", role=role, reason=reason)

    def on_sigterm(signum, frame) -> None:
        threading.Thread(target=lambda: (shutdown("sigterm"), os._exit(0)), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError:
            emit("reply", ok=False, error=f"bad command {line!r}")
            continue
        op = cmd.get("op")
        try:
            if op == "exit":
                break
            if op == "cleanup":
                shutdown("command")
                emit("reply", op=op, ok=True)
                continue
            result = _run_command(rt, loop, cmd)
        except Exception as exc:  # noqa: BLE001
            emit("reply", op=op, ok=False, tag=cmd.get("tag"), **_error_fields(exc))
        else:
            emit("reply", op=op, ok=True, tag=cmd.get("tag"), result=result)
    shutdown("stdin closed")
    sys.stdout.flush()
    os._exit(0)


def _limit_memory(extra_mb: int) -> None:
    """Cap this process's address space a little above what it uses now (a primary short of memory)."""
    import resource

    with open("/proc/self/statm") as fh:
        in_use = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = in_use + extra_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    emit("memory_limited", limit=limit, in_use=in_use)


def _break_io(rt) -> None:
    """Make the bus I/O thread die at the end of its next receive round, as a fault there would."""

    def fatal() -> None:
        raise SystemExit("injected fault in the bus I/O thread")

    rt.bus.add_round_hook(fatal)


def _timed_writes(rt, prefix: str, n: int) -> list[float]:
    """Create *n* sessions one by one; each write's latency in milliseconds."""
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        rt.store.sessions.create(id=f"{prefix}-{i}", title="timed")
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _wait_heartbeat(rt, timeout: float) -> bool:
    """Wait until the SUB socket delivered an event (so later events are not lost to slow joining)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = rt.client
        if client is not None and client.last_event_at is not None:
            return True
        time.sleep(0.005)
    return False


def _run_command(rt, loop, cmd: dict):
    op = cmd.get("op")
    if op == "write":
        return rt.store.sessions.create(id=cmd["sid"], title=cmd.get("title", "cmd write"))
    if op == "writes":
        prefix = cmd["prefix"]
        if cmd.get("pipeline"):
            with rt.store.pipeline(batch_size=int(cmd["pipeline"])) as pipe:
                pending = [pipe.sessions.create(id=f"{prefix}-{i}", title="batch") for i in range(int(cmd["n"]))]
            return [p.result()["id"] for p in pending]
        return [
            rt.store.sessions.create(id=f"{prefix}-{i}", title="batch")["id"] for i in range(int(cmd["n"]))
        ]
    if op == "pipeline":  # sessions.create for each id, batch_size at a time; every outcome
        pipe = rt.store.pipeline(batch_size=int(cmd["batch"]))
        pending = [pipe.sessions.create(id=sid, title="pipelined") for sid in cmd["ids"]]
        pipe.flush()
        outcomes = []
        for p in pending:
            error = p.exception()
            outcomes.append(
                {"id": p.result()["id"]} if error is None else {"kind": getattr(error, "kind", None), "type": type(error).__name__}
            )
        return outcomes
    if op == "bus_stats":
        return rt.bus.stats()
    if op == "ensure_primary":
        t0 = time.monotonic()
        try:
            rt.ensure_primary(timeout=cmd.get("timeout"))
        finally:
            emit("ensure_primary_took", seconds=time.monotonic() - t0)
        return {"role": rt.role}
    if op == "break_io":
        _break_io(rt)
        return {"armed": True}
    if op == "timed_writes":
        return _timed_writes(rt, cmd["prefix"], int(cmd["n"]))
    if op == "role":
        return {
            "fenced": rt.fenced,
            "lock_held": rt.lock.held,
            "role": rt.role,
            "epoch": rt.epoch,
            "record_pid": rt.record.pid if rt.record else None,
            "resyncs": rt.resyncs,
        }
    if op == "publish":
        return {"seq": rt.bus.publish(cmd["topic"], cmd.get("payload"))}
    if op == "publish_change":
        return {"seq": rt.bus.publish_change(cmd["topic"], cmd["payload"])}
    if op == "lose_change":
        # number a change event that never goes out, as one dropped at a full queue would be
        with rt.bus._out_lock:
            rt.bus._change_seq += 1
        return {"change_seq": rt.bus.last_change_seq}
    if op == "call":
        if rt.client is None:
            raise RuntimeError("no client (this instance is the primary)")
        params = cmd.get("params")
        if cmd.get("pad"):  # a large request: params {"pad": "x" * pad}
            params = {**(params or {}), "pad": "x" * int(cmd["pad"])}
        return rt.client.call(cmd["method"], params, timeout=cmd.get("timeout", 5.0))
    if op == "stop_writes":
        if loop is not None:
            loop.stop.set()
            loop.thread.join(60)
        return {"stopped": True}
    raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        emit("crash", error=traceback.format_exc())
        sys.stdout.flush()
        os._exit(3)
