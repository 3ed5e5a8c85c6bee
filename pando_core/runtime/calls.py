"""Calls to the primary's bus methods from any instance (``app.call_primary``).

On the primary the handler runs in the caller's thread. On a secondary the call goes over the
bus; when the primary changes while it is in flight (a failover, a graceful hand-over) it is sent
again to the new primary until the deadline, and if this instance is promoted meanwhile the
handler runs here. Errors keep their kind on both sides: a handler's ``NotFoundError`` is the
caller's ``NotFoundError``. A call may be sent twice when the old primary died after running it
and before answering; handlers of methods that change things should be idempotent or write
through repositories (whose writes are keyed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import UnavailableError
from . import protocol as P
from .client import ClientClosed
from .protocol import CallInterrupted, RpcError, RpcTimeout
from .roles import PRIMARY
from .write_proxy import remote_error

_FOLLOW_WAIT_S = 0.05
_SETTLING_MS = 3000  # a new primary's plugin methods are registered right after its bus starts


def call_on_primary(
    runtime: Any, method: str, params: Any, timeout: float, local: Callable[[str, Any], Any]
) -> Any:
    """Call *method* on whichever instance is the primary, within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    last_problem = "no connection to a primary"
    while True:
        with runtime.state_lock:
            role, client, record = runtime.role, runtime.client, runtime.record
        if role == PRIMARY:
            return local(method, params)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pid = record.pid if record is not None else "?"
            if last_problem.startswith("the new primary does not serve"):
                raise _not_served(method, record)
            raise UnavailableError(f"{method}: the primary (pid {pid}) did not answer within {timeout:.0f}s ({last_problem})")
        if client is None:
            _wait_for_primary(runtime, remaining)
            continue
        epoch = record.epoch if record is not None else None
        try:
            return client.call(method, params, remaining)
        except (CallInterrupted, ClientClosed) as exc:
            last_problem = str(exc) or "the primary changed during the call"
        except RpcTimeout as exc:
            current = runtime.record
            if current is None or current.epoch == epoch:
                raise UnavailableError(
                    f"{method}: the primary (pid {record.pid if record else '?'}) did not answer within "
                    f"{timeout:.0f}s; it may be hung: check `pando status`"
                ) from exc
            last_problem = "the primary changed during the call"
        except RpcError as exc:
            if exc.kind == P.KIND_METHOD_NOT_FOUND and _just_started(record) and time.monotonic() < deadline:
                # a primary that has just bound its bus serves its plugins' methods a moment later
                last_problem = f"the new primary does not serve {method!r} yet"
                _wait_for_primary(runtime, _FOLLOW_WAIT_S)
                continue
            if exc.kind == P.KIND_METHOD_NOT_FOUND:
                raise _not_served(method, record) from exc
            if exc.kind == P.KIND_CLOSED:
                last_problem = exc.message
            else:
                raise remote_error(exc) from exc
        _wait_for_primary(runtime, min(_FOLLOW_WAIT_S, max(0.0, deadline - time.monotonic())))


def _not_served(method: str, record: Any) -> UnavailableError:
    pid = record.pid if record is not None else "?"
    return UnavailableError(
        f"the primary (pid {pid}) does not serve {method!r}: it runs without the plugin that "
        "provides it; restart that pando with the same plugins as this one"
    )


def _just_started(record: Any) -> bool:
    """Whether the primary *record* names started less than a few seconds ago."""
    from ..clock import now_ms

    started = getattr(record, "started_at", None)
    return isinstance(started, int) and now_ms() - started < _SETTLING_MS


def _wait_for_primary(runtime: Any, seconds: float) -> None:
    """Wait briefly for a failover to change the primary (or make this instance the primary)."""
    with runtime.primary_changed:
        runtime.primary_changed.wait(timeout=min(seconds, _FOLLOW_WAIT_S))
