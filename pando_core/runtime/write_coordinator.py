"""Where writes from secondaries land: the primary's write coordinator (group commit, exactly once).

A secondary's write arrives as ``db.write {method, params, key: [instance_id, seq]}`` (see
`write_proxy` for the sending side); a pipeline's writes come as one JSON-RPC batch, handed over
whole (:meth:`WriteCoordinator.handle_many`).
The ``db.write`` requests the bus receives in one burst are applied together, on the bus thread,
as one transaction (group commit; a batch in which a write fails is applied again with one
SAVEPOINT per write, see :meth:`WriteCoordinator._apply`). When the database is busy with a
local write, or earlier writes are still queued, they go to the coordinator thread's queue,
which batches the same way. Every key is recorded with its outcome
in ``applied_writes`` inside the same transaction, and the answer goes out only after COMMIT. A
key seen again (a retry, possibly to a new primary after failover) returns the stored outcome
and is not applied twice.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..clock import now_ms
from ..db.engine import Change, Database, WriteTx, coalesce_changes
from ..db.repository import WRITE, MethodRegistry, MethodSpec, translate_db_error
from ..db.schema import applied_writes
from ..db.storage import storage_full
from ..errors import PandoError, error_from_kind
from ..text import json_storable  # recorded in applied_writes: text SQLite can store
from .bus import BatchReply, CallContext, Reply
from .protocol import EncodedJSON, RpcError, encode_json

log = logging.getLogger("pando.writes")

BATCH_MAX = 128
KEY_SEQ_MIN, KEY_SEQ_MAX = -(2**63), 2**63 - 1  # what applied_writes.seq (an SQLite integer) holds
# how long a key's outcome is kept: a secondary resends a write only until its write deadline
# (30 s by default), so an hour covers every retry while applied_writes stays small
APPLIED_RETENTION_MS = 3_600_000
PRUNE_INTERVAL_S = 600.0
# error kinds that are a property of the request (recorded, so a retry gets the same answer)
RECORDED_ERROR_KINDS = {"not_found", "constraint", "validation"}
_SELECT_APPLIED = f"SELECT ok, result FROM {applied_writes.name} WHERE instance_id = ? AND seq = ?"
_MAX_APPLIED = f"SELECT max(seq) FROM {applied_writes.name} WHERE instance_id = ?"
_PRUNE_APPLIED = f"DELETE FROM {applied_writes.name} WHERE created_at < ?"
_INSERT_APPLIED = (
    f"INSERT INTO {applied_writes.name} (instance_id, seq, method, ok, result, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass(slots=True)
class _Pending:
    method: str
    params: dict[str, Any]
    key: tuple[str, int] | None
    writer: str
    spec: MethodSpec | None = None  # looked up when the write was taken (None: at apply time)
    # a db.write from the bus, answered {"result": ...} or an RpcError: through its Reply, or as
    # request *index* of a batch's BatchReply
    reply: Reply | BatchReply | None = None
    index: int = -1
    future: concurrent.futures.Future | None = None  # a local write (submit)
    changes: list[Change] = field(default_factory=list)

    def succeed(self, value: Any, encoded: str) -> None:
        """*encoded*: *value* as JSON, as recorded (the reply reuses it)."""
        if self.reply is None:
            if not self.future.done():
                self.future.set_result(value)
        elif self.index < 0:
            self.reply.result(EncodedJSON('{"result":' + encoded + "}"))
        else:
            self.reply.result(self.index, EncodedJSON('{"result":' + encoded + "}"))

    def fail(self, error: BaseException) -> None:
        """*error*: an RpcError or one of the core's errors (the bus answers either with its kind)."""
        if self.reply is None:
            if not self.future.done():
                self.future.set_exception(error)
        elif self.index < 0:
            self.reply.error(error)
        else:
            self.reply.error(self.index, error)


_LONE, _OPTIMISTIC, _ISOLATED = 0, 1, 2  # how a batch's writes are applied (see WriteCoordinator._apply)
_WHOLE = contextlib.nullcontext()  # no savepoint: a failure undoes the whole attempt (reusable: it holds nothing)


class _Replay(Exception):
    """A write of an optimistic attempt failed: apply the batch again, isolated."""


class _Attempt:
    """One pass over a batch: each write's outcome, and the key records to insert after it."""

    __slots__ = ("outcomes", "records", "recorded", "applied", "duplicates", "now_ms")

    def __init__(self) -> None:
        self.outcomes: list[tuple[bool, Any, str | None]] = []  # (ok, result or error, result as JSON)
        self.records: list[tuple] = []  # rows for applied_writes
        self.recorded: dict[tuple[str, int], tuple[int, str]] = {}  # key -> (ok, result) in this pass
        self.applied = 0
        self.duplicates = 0
        self.now_ms = WriteTx.now_ms()  # the batch's records share one time (it only dates them for pruning)

    def record(self, key: tuple[str, int], method: str, ok: int, encoded: str) -> None:
        self.records.append((key[0], key[1], method, ok, encoded, self.now_ms))
        self.recorded[key] = (ok, encoded)


def _coalesce(batch: list[_Pending]) -> dict[str, list[Change]]:
    """A batch's changes, one per (table, op) for each writer: one event per writer and kind of
    change per commit rather than one per write (a busy primary publishes far fewer events)."""
    by_writer: dict[str, list[Change]] = {}
    for item in batch:
        by_writer.setdefault(item.writer, []).extend(item.changes)
    return {writer: coalesce_changes(changes) for writer, changes in by_writer.items()}


class WriteCoordinator:
    """Applies queued writes on the primary in batched transactions."""

    def __init__(
        self,
        db: Database,
        registry: MethodRegistry,
        instance_id: str,
        *,
        retention_ms: int = APPLIED_RETENTION_MS,
        prune_interval: float = PRUNE_INTERVAL_S,
    ) -> None:
        self.db = db
        self.registry = registry
        self.instance_id = instance_id
        self.retention_ms = retention_ms
        self.prune_interval = prune_interval
        self._next_prune = time.monotonic() + prune_interval
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._outstanding = 0  # queued or being applied by the coordinator thread
        self._round: list[_Pending] = []  # db.write requests of the bus's current receive round
        self._unpublished: list[_Pending] = []  # committed on the bus thread, changes not yet announced
        self._lock = threading.Lock()
        # highest key recorded per writing instance (used under the database's write lock, by the
        # bus thread or the coordinator thread); filled from applied_writes on an instance's first write
        self._recorded_max: dict[str, int] = {}
        self.stats = {"batches": 0, "writes": 0, "duplicates": 0, "replays": 0, "pruned": 0}
        self._repositories: dict[type, Any] = {}
        self._thread = threading.Thread(target=self._loop, name="pando-write-coordinator", daemon=True)
        self._thread.start()

    # -- intake --------------------------------------------------------------------------------

    def submit(self, method: str, params: dict[str, Any], key: tuple[str, int] | None) -> concurrent.futures.Future:
        """Queue a write for the coordinator thread; the future gets its result or error."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._enqueue(_Pending(method, params, key, key[0] if key else self.instance_id, future=future))
        return future

    def _enqueue(self, pending: _Pending) -> None:
        with self._lock:
            if not self._closed:
                self._outstanding += 1  # until its batch is applied (see _apply_queued)
                self._queue.put(pending)
                return
        pending.fail(RpcError(kind="unavailable", message="primary is shutting down"))

    def handle_rpc(self, params: Any, call: CallContext, reply: Reply) -> None:
        """The ``db.write`` bus handler (bus I/O thread, deferred reply): validate, and hold the
        write for this receive round; :meth:`apply_round` applies it and answers after COMMIT."""
        self._round.append(self._take(params, reply, -1))

    def handle_many(self, requests: list[dict[str, Any]], call: CallContext, answers: BatchReply) -> None:
        """The ``db.write`` handler of a pipelined batch: each write as :meth:`handle_rpc` takes
        it, answered as request *i* of the batch (an invalid one at once)."""
        held = self._round
        for index, params in enumerate(requests):
            try:
                held.append(self._take(params, answers, index))
            except RpcError as exc:
                answers.error(index, exc)

    def _take(self, params: Any, reply: Reply | BatchReply, index: int) -> _Pending:
        """A ``db.write`` request's write, checked (RpcError ``invalid_params`` or
        ``method_not_found`` if it cannot be applied)."""
        if not isinstance(params, dict):
            raise RpcError.invalid_params("db.write params must be an object")
        method, args, key = params.get("method"), params.get("params", {}), params.get("key")
        if not isinstance(method, str):
            raise RpcError.invalid_params("db.write: method must be a string")
        spec = self.registry.get(method)
        if spec is None or spec.kind != WRITE:
            raise RpcError(kind="method_not_found", message=f"db.write: unknown write method {method!r}")
        if not isinstance(args, dict):
            raise RpcError.invalid_params("db.write: params must be an object")
        if not (
            isinstance(key, list)
            and len(key) == 2
            and isinstance(key[0], str)
            and isinstance(key[1], int)
            and not isinstance(key[1], bool)
        ):
            raise RpcError.invalid_params("db.write: key must be [instance_id, sequence]")
        if not KEY_SEQ_MIN <= key[1] <= KEY_SEQ_MAX:  # SQLite stores it as int64: refused alone
            raise RpcError.invalid_params("db.write: key sequence must fit in a signed 64-bit integer")
        return _Pending(method, args, (key[0], key[1]), key[0], spec, reply, index)

    def apply_round(self) -> None:
        """The bus's end-of-receive-round hook: apply the writes that arrived together.

        They are one group commit, applied right here on the bus thread: an idle primary answers
        a write with no thread hand-off (two switches would cost more than the commit), and a
        busy one commits everything that queued up while it was committing the previous round.
        If a local write holds the database, or earlier writes still wait in the coordinator's
        queue (order is kept), the round joins that queue instead of blocking the bus.
        """
        batch = self._round
        if not batch:
            return
        self._round = []
        with self._lock:
            direct = not self._closed and not self._outstanding and self.db.write_lock.acquire(blocking=False)
        if not direct:
            for pending in batch:
                self._enqueue(pending)
            return
        try:
            if self._apply(batch):
                self._unpublished = batch  # announced by announce_round, after the replies
        finally:
            self.db.write_lock.release()

    def announce_round(self) -> None:
        """The bus's after-replies hook: announce what :meth:`apply_round` committed (change
        events and commit listeners) once its replies are on their way."""
        batch, self._unpublished = self._unpublished, []
        if batch:
            self._announce(batch)
            # the next round's BEGIN, while the bus waits for it (see Database.prepare_write)
            self._if_writer_free(self.db.prepare_write)

    def idle(self) -> None:
        """The bus's idle hook: no round came close behind, so give back the transaction begun
        for it; SQLite's write lock is held only while writes keep coming."""
        self._if_writer_free(self.db.release_prepared)

    def _if_writer_free(self, action: Any) -> None:
        """``action()`` under the database's write lock, unless someone else holds it (a local
        write then uses the prepared transaction) or the coordinator is closed (close() gives
        it back, under the same lock)."""
        db = self.db
        if db.write_lock.acquire(blocking=False):
            try:
                if not self._closed:
                    action()
            finally:
                db.write_lock.release()

    # -- the coordinator thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            if time.monotonic() >= self._next_prune:
                self._prune_on_schedule()
            try:
                first = self._queue.get(timeout=max(0.0, self._next_prune - time.monotonic()))
            except queue.Empty:
                continue
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._apply_queued(batch)
                    return
                batch.append(item)
            self._apply_queued(batch)

    def _apply_queued(self, batch: list[_Pending]) -> None:
        try:
            if self._apply(batch):
                self._announce(batch)
        finally:
            with self._lock:
                self._outstanding -= len(batch)

    def prune(self, older_than_ms: int | None = None) -> int:
        """Forget the outcomes of writes recorded before *older_than_ms* (default: older than
        :attr:`retention_ms`); returns how many were removed. A key forgotten this way would be
        applied again if it ever came back, which no secondary does after its write deadline."""
        if older_than_ms is None:
            older_than_ms = WriteTx.now_ms() - self.retention_ms
        with self.db.write_lock, self.db.transaction() as tx:
            removed = tx.raw.execute(_PRUNE_APPLIED, (older_than_ms,)).rowcount
        self.stats["pruned"] += removed
        return removed

    def _prune_on_schedule(self) -> None:
        self._next_prune = time.monotonic() + self.prune_interval
        try:
            removed = self.prune()
        except Exception:  # noqa: BLE001 - pruning is housekeeping; writes go on
            log.exception("pruning applied_writes failed")
            return
        if removed:
            log.info("forgot %d applied write keys older than %d s", removed, self.retention_ms // 1000)

    def _apply(self, batch: list[_Pending]) -> bool:
        """Apply *batch* as one transaction and answer each write; False if it did not commit.

        Several writes are applied first without savepoints (two statements per write saved).
        If one fails, the transaction is rolled back and the batch applied again with one
        SAVEPOINT per write, so that only the failing write is undone: nothing was answered or
        announced before COMMIT, so the first attempt leaves no trace. A lone write is undone by
        restarting the transaction.
        """
        if len(batch) == 1:
            applied = self._apply_fresh(batch[0])
            if applied is not None:
                return applied
        try:
            with self.db.write_lock, self.db.transaction() as tx:
                if len(batch) == 1:
                    attempt = self._attempt(tx, batch, _LONE)
                else:
                    try:
                        attempt = self._attempt(tx, batch, _OPTIMISTIC)
                    except _Replay:  # its key records were not inserted yet: nothing to forget
                        tx.restart()
                        self.stats["replays"] += 1
                        attempt = self._attempt(tx, batch, _ISOLATED)
        except Exception as exc:  # noqa: BLE001 - the whole batch failed to commit
            self._not_committed(batch, exc)
            return False
        self.stats["batches"] += 1
        self.stats["writes"] += attempt.applied
        self.stats["duplicates"] += attempt.duplicates
        for item, (ok, value, encoded) in zip(batch, attempt.outcomes, strict=True):
            if ok:
                item.succeed(value, encoded)
            else:
                item.fail(value)
        return True

    def _apply_fresh(self, item: _Pending) -> bool | None:
        """:meth:`_apply` for a batch of one write under a fresh key, the serial case: the same
        transaction, key record and answer, without a batch's bookkeeping (about 6 us of a lone
        proxied write). None, with nothing of the write left behind, when it is not that case or
        the write failed: :meth:`_apply` then applies it the general way, which answers a key it
        may have seen with the stored outcome, and records a failure as the answer."""
        key = item.key
        highest = None if key is None else self._recorded_max.get(key[0])
        spec = item.spec or self.registry.get(item.method)
        if highest is None or key[1] <= highest or spec is None:
            return None
        applied = False  # the write itself went through: what fails after it is the commit
        try:
            with self.db.write_lock, self.db.transaction() as tx:
                result = spec.function(self._repository(spec), tx, **item.params)
                encoded = json_storable(encode_json(result))
                applied = True
                tx.raw.execute(_INSERT_APPLIED, (key[0], key[1], item.method, 1, encoded, now_ms()))
        except Exception as exc:  # noqa: BLE001 - rolled back: nothing of the write is left
            if not applied:
                return None  # applied again, and answered, the general way (a nested write too)
            self._not_committed([item], exc)
            return False
        self._recorded_max[key[0]] = key[1]
        item.changes = tx.changes
        self.stats["batches"] += 1
        self.stats["writes"] += 1
        item.succeed(result, encoded)
        return True

    def _not_committed(self, batch: list[_Pending], exc: Exception) -> None:
        """Answer every write of a batch whose transaction failed to commit."""
        self._recorded_max.clear()  # keys noted in this batch were rolled back with it
        full = storage_full(exc, self.db.storage_dir)
        if full is not None:  # said as it is, not "retry": nothing is written until space is freed
            log.error("write batch not committed: %s", full)
            for item in batch:
                item.fail(full)
            return
        log.error("write batch failed to commit", exc_info=exc)
        error = RpcError(kind="unavailable", message=f"write batch failed: {exc}")
        for item in batch:
            item.fail(error)

    def _attempt(self, tx: WriteTx, batch: list[_Pending], mode: int) -> _Attempt:
        """Apply every write of *batch* in *tx*, then record their keys (one statement for all)."""
        attempt = _Attempt()
        raw = tx.raw
        part = tx.part()  # each write's own changes, in the batch's transaction
        outcomes = attempt.outcomes
        for item in batch:
            item.changes = []
            outcomes.append(self._apply_one(raw, tx, part, item, mode, attempt))
        if attempt.records:
            raw.executemany(_INSERT_APPLIED, attempt.records)
            highest = self._recorded_max
            for instance_id, seq, *_ in attempt.records:
                if seq > highest.get(instance_id, -1):
                    highest[instance_id] = seq
        return attempt

    def _announce(self, batch: list[_Pending]) -> None:
        for writer, changes in _coalesce(batch).items():
            self.db.notify(changes, writer)

    def _already_applied(self, raw: Any, key: tuple[str, int]) -> tuple[int, str | None] | None:
        """The stored outcome of *key*, or None. A key above every key recorded for its instance
        cannot have been applied, so the lookup is skipped for fresh writes (the common case)."""
        instance_id, seq = key
        highest = self._recorded_max.get(instance_id)
        if highest is None:
            highest = raw.execute(_MAX_APPLIED, (instance_id,)).fetchone()[0]
            highest = self._recorded_max[instance_id] = -1 if highest is None else highest
        if seq > highest:
            return None
        return raw.execute(_SELECT_APPLIED, (instance_id, seq)).fetchone()

    def _apply_one(
        self, raw: Any, batch_tx: WriteTx, part: WriteTx, item: _Pending, mode: int, attempt: _Attempt
    ) -> tuple[bool, Any, str | None]:
        """Apply one write of a batch (see :meth:`_apply` for *mode*) through *part*, which
        collects its changes; its key's record is added to *attempt*, and inserted with the
        others after the last write."""
        # The coordinator's own statements go straight to the DBAPI connection, inside the
        # batch's transaction: building SQLAlchemy constructs for them costs more than the SQLite
        # work (see bench/ipc.py).
        key = item.key
        if key is not None:
            stored = attempt.recorded.get(key)  # the same key twice in one batch (a quick resend)
            if stored is None:
                stored = self._already_applied(raw, key)
            if stored is not None:
                attempt.duplicates += 1
                ok, stored_result = stored
                payload = json.loads(stored_result) if stored_result else None
                if ok:
                    return True, payload, stored_result or "null"
                return False, error_from_kind(payload["kind"], payload["message"]), None
        spec = item.spec or self.registry.get(item.method)
        if spec is None:
            return False, RpcError(kind="method_not_found", message=f"unknown write method {item.method!r}"), None
        part.changes = changes = []
        try:
            with batch_tx.savepoint() if mode == _ISOLATED else _WHOLE:  # undone alone, if it fails
                result = spec.function(self._repository(spec), part, **item.params)
                encoded = json_storable(encode_json(result))  # recorded, and the reply reuses it
        except Exception as exc:  # noqa: BLE001 - one failure must not sink the batch
            if mode == _OPTIMISTIC:
                raise _Replay from exc
            if mode == _LONE:
                batch_tx.restart()
            error = translate_db_error(exc, item.method, self.db.storage_dir)
            if isinstance(error, TypeError):
                error = error_from_kind("validation", f"{item.method}: {error}")
            if isinstance(error, PandoError) and error.kind in RECORDED_ERROR_KINDS:
                if key is not None:
                    attempt.record(key, item.method, 0, json_storable(encode_json({"kind": error.kind, "message": str(error)})))
                return False, error, None
            if isinstance(error, PandoError):
                return False, error, None
            log.warning("write %s failed: %s", item.method, error)
            return False, RpcError(kind="app_error", message=f"{item.method}: {type(error).__name__}: {error}"), None
        if key is not None:
            attempt.record(key, item.method, 1, encoded)
        item.changes = changes
        attempt.applied += 1
        return True, result, encoded

    def _repository(self, spec: MethodSpec) -> Any:
        """One instance per repository class (they keep no state; the coordinator passes tx)."""
        repository = self._repositories.get(spec.repository)
        if repository is None:
            repository = self._repositories[spec.repository] = spec.repository(None)
        return repository

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking writes, finish the queued ones, stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)
        self.db.release_prepared()  # a fenced primary must not keep SQLite's write lock
