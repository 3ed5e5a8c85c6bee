"""Where a secondary's writes go: to the primary over the bus, resent after failover until answered.

A secondary's repository write gets one idempotency key ``[instance_id, seq]`` and becomes a
``db.write`` request to the primary (a pipeline's writes go as one batch message). It is sent
again, with the same key, until a primary answers or the write deadline passes: the old primary
after a timeout, or the new one after a failover (the primary's coordinator, see
`write_coordinator`, answers a key it has seen with the stored outcome, so a write is never
applied twice). If this instance is itself promoted meanwhile, its own coordinator applies the
write, still under the same key.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from typing import Any

from ..db.engine import Database
from ..db.repository import LocalExecutor, MethodSpec
from ..errors import UnavailableError, error_from_kind
from . import protocol as P
from .client import Client, ClientClosed
from .protocol import CallInterrupted, RpcError, RpcTimeout
from .roles import PRIMARY, SECONDARY
from .write_coordinator import RECORDED_ERROR_KINDS, WriteCoordinator


class ProxyExecutor(LocalExecutor):
    """A secondary's executor: reads from the local read-only database, writes via the primary.

    Each write gets one idempotency key and is re-sent with that same key until the primary (the
    old one or a new one after failover) answers, or the write deadline passes. If this instance
    is itself promoted meanwhile, the write is applied locally through its coordinator, still
    under the same key.
    """

    def __init__(self, runtime: Any, db: Database, *, write_timeout: float = 30.0) -> None:
        super().__init__(db, runtime.instance_id)  # reads: LocalExecutor.run_read on the read-only db
        self.runtime = runtime
        self.sender = WriteSender(runtime)
        self.write_timeout = write_timeout
        # applied_writes outlives this process: a later process started with the same instance
        # id must not reuse a key, or its new writes would get this one's stored results (and
        # never be applied). Start at the wall clock in microseconds: no process issues more
        # than one write per microsecond, so earlier incarnations' keys are all smaller.
        self._seq = itertools.count(time.time_ns() // 1000)

    def run_write(self, spec: MethodSpec, params: dict[str, Any]) -> Any:
        key = (self.runtime.instance_id, next(self._seq))
        return self.sender.send_write(spec.qualified, params, key, self.write_timeout)

    def run_writes(self, calls: list[tuple[MethodSpec, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        instance_id, seq = self.runtime.instance_id, self._seq
        writes = [(spec.qualified, params, (instance_id, next(seq))) for spec, params in calls]
        return self.sender.send_writes(writes, self.write_timeout)


def remote_error(error: RpcError) -> Exception:
    """A wire error as the core's error class where the kind is known (else *error* itself)."""
    if error.kind in RECORDED_ERROR_KINDS:
        return error_from_kind(error.kind, error.message)
    if error.kind in ("method_not_found", "invalid_params"):
        return error_from_kind("validation", error.message)
    return error


class WriteSender:
    """Sends a runtime's keyed writes to whoever is the primary now, until each is answered.

    Reads the runtime's ``role``, ``client`` and ``coordinator`` (they change on failover) under its
    ``state_lock``, and waits on its ``primary_changed`` condition between attempts.
    """

    __slots__ = ("runtime",)

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def send_write(self, method: str, params: dict[str, Any], key: tuple[str, int], timeout: float) -> Any:
        """Send one keyed write until acknowledged (possibly by a new primary) or the deadline."""
        start = time.monotonic()
        runtime = self.runtime
        client = runtime.client
        outcome = None
        if runtime.role == SECONDARY and client is not None:  # the usual case: one call, no resend loop
            try:
                outcome = _outcome(client.call(*_write_call(method, params, key), min(1.0, timeout)))
            except RpcError as exc:
                outcome = _outcome(exc)
        if outcome is None:  # not answered, or answered "retry": the resend loop, same key
            remaining = max(0.0, timeout - (time.monotonic() - start))
            outcome = self.send_writes([(method, params, key)], remaining)[0]
        ok, value = outcome
        if ok:
            return value
        raise value

    def send_writes(
        self, writes: list[tuple[str, dict[str, Any], tuple[str, int]]], timeout: float
    ) -> list[tuple[bool, Any]]:
        """Send keyed writes ``(method, params, key)`` until each is answered -- possibly by a new
        primary after failover -- or the deadline passes. Several go out as one batch message
        (applied in order, in one group commit); a retry resends only the unanswered ones, with
        their original keys. Returns ``(True, result)`` or ``(False, exception)`` per write, in
        order."""
        runtime = self.runtime
        deadline = time.monotonic() + timeout
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(writes)
        todo = list(range(len(writes)))
        state = _Resending()
        while todo:
            with runtime.state_lock:
                role, client, coordinator = runtime.role, runtime.client, runtime.coordinator
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = _not_acknowledged([writes[i] for i in todo], timeout, state.last_error)
                for i in todo:
                    outcomes[i] = (False, error)
                break
            if role == PRIMARY and coordinator is not None:
                answers = self._apply_here(coordinator, [writes[i] for i in todo], remaining)
            elif client is None:
                raise UnavailableError("this instance has no connection to a primary")
            else:
                answers = state.ask(client, [_write_call(*writes[i]) for i in todo], remaining)
                if answers is _RESEND_NOW:
                    continue
            todo = state.settle(todo, answers, outcomes)
            if todo:  # wait briefly for a failover to change the primary, then resend with the same keys
                with runtime.primary_changed:
                    runtime.primary_changed.wait(timeout=0.05)
        return outcomes

    @staticmethod
    def _apply_here(coordinator: WriteCoordinator, writes: list[tuple], timeout: float) -> list[Any]:
        """This instance is the primary now: its coordinator applies the writes, same keys.
        Answers as the bus would give them: ``{"result": ...}`` or the exception."""
        futures = [coordinator.submit(method, params, key) for method, params, key in writes]
        deadline = time.monotonic() + timeout
        answers: list[Any] = []
        for future in futures:
            try:
                answers.append({"result": future.result(timeout=max(0.0, deadline - time.monotonic()))})
            except concurrent.futures.TimeoutError:
                answers.append(RpcError(kind="unavailable", message="local coordinator timed out"))
            except Exception as exc:  # noqa: BLE001 - the write's own error, kept per write
                answers.append(exc)
        return answers


_RESEND_NOW: Any = object()  # _Resending.ask: send again at once, same keys


class _Resending:
    """What :meth:`WriteSender.send_writes` keeps between its attempts at a primary."""

    __slots__ = ("attempt_timeout", "one_by_one", "last_error")

    def __init__(self) -> None:
        self.attempt_timeout = 1.0  # doubled after each timeout, up to 5 s
        self.one_by_one = False  # after a batch too large for one message
        self.last_error = "no answer"  # what the unanswered writes are reported with at the deadline

    def ask(self, client: Client, calls: list[tuple[str, Any]], remaining: float) -> list[Any] | None:
        """One attempt: an answer per call (a result or the RpcError it got), None when no
        answer came, or :data:`_RESEND_NOW`."""
        timeout = min(self.attempt_timeout, remaining)
        try:
            if len(calls) == 1 or self.one_by_one:
                return [_answer_of(client, call, timeout) for call in calls]
            return client.call_batch(calls, timeout)
        except CallInterrupted:
            # this instance followed a new primary while the writes were in flight (the old one
            # may have died before or after applying them)
            self.last_error = "the primary changed while the write was in flight"
            return _RESEND_NOW
        except ClientClosed as exc:
            self.last_error = str(exc)
        except RpcTimeout as exc:
            self.last_error = f"timed out ({exc})"
            self.attempt_timeout = min(self.attempt_timeout * 2, 5.0)
        except RpcError as exc:  # the whole batch refused
            if exc.kind == P.KIND_TOO_LARGE:
                self.one_by_one = True  # each write on its own (and too large alone, if it is)
                return _RESEND_NOW
            return [exc] * len(calls)
        return None

    def settle(self, todo: list[int], answers: list[Any] | None, outcomes: list[tuple[bool, Any]]) -> list[int]:
        """Record the outcome of each write of *todo* that got one; returns those to send again."""
        retry = []
        for i, answer in zip(todo, answers or [None] * len(todo), strict=True):
            outcome = None if answer is None else _outcome(answer)
            if outcome is None:
                retry.append(i)
                if answer is not None:
                    self.last_error = str(answer)
            else:
                outcomes[i] = outcome
        return retry


def _not_acknowledged(writes: list[tuple], timeout: float, last_error: str) -> UnavailableError:
    first = writes[0][0]
    what = f"write {first} was" if len(writes) == 1 else f"{len(writes)} writes ({first}, ...) were"
    return UnavailableError(
        f"{what} not acknowledged within {timeout:.0f}s ({last_error}); the primary may be hung: check `pando status`"
    )


def _answer_of(client: Client, call: tuple[str, Any], timeout: float) -> Any:
    """One request's answer: its result, or the RpcError the primary answered with. A call that
    got no answer (timeout, interruption, closed client) raises."""
    try:
        return client.call(*call, timeout)
    except (RpcTimeout, ClientClosed):
        raise
    except RpcError as exc:
        return exc


def _write_call(method: str, params: dict[str, Any], key: tuple[str, int]) -> tuple[str, dict[str, Any]]:
    """The ``db.write`` request of a keyed write."""
    return "db.write", {"method": method, "params": params, "key": list(key)}


def _outcome(answer: Any) -> tuple[bool, Any] | None:
    """A write's answer as ``(True, result)`` or ``(False, error)``; None when it means "not
    applied, or not known to be" (a timeout, a retryable error): resend, same key."""
    if isinstance(answer, RpcTimeout) or (
        isinstance(answer, RpcError) and (answer.retryable or answer.kind == P.KIND_CLOSED)
    ):
        return None
    if isinstance(answer, Exception):
        return False, remote_error(answer) if isinstance(answer, RpcError) else answer
    return True, answer["result"]
