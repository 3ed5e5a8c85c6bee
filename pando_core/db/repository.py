"""Repositories whose methods are declared ``@read`` or ``@write``.

A repository method is written once, against a transaction:

    class NoteRepository(Repository):
        name = "notes"

        @write
        def add(self, tx, *, text: str) -> dict: ...

        @read
        def get(self, tx, *, id: str) -> dict: ...

Callers never pass ``tx``: ``store.notes.add(text="hi")``. Where the call runs is the executor's
business: on the primary it opens a local transaction; on a secondary a write travels over the bus
as ``{method: "notes.add", params: {...}, key: [instance_id, seq]}`` and reads use the local
read-only connection. Parameters and results must be JSON values (dicts, lists, str, int, ...).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..errors import ConstraintError, ValidationError
from .engine import Change, Database, ReadTx, WriteTx, coalesce_changes

READ = "read"
WRITE = "write"


def read(fn: Callable) -> Callable:
    fn.__pando_op__ = READ
    return fn


def write(fn: Callable) -> Callable:
    fn.__pando_op__ = WRITE
    return fn


_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class MethodSpec:
    qualified: str  # "sessions.create"
    repository: type[Repository]
    attribute: str
    kind: str  # read | write
    signature: inspect.Signature
    function: Callable[..., Any]  # the method as written: function(repository, tx, **params)
    # parameters after (self, tx) that can be passed by name, and those without a default
    names: frozenset[str] = field(init=False)
    required: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        params = list(self.signature.parameters.values())[2:]
        by_name = [p for p in params if p.kind in _BY_NAME]
        object.__setattr__(self, "names", frozenset(p.name for p in by_name))
        object.__setattr__(self, "required", frozenset(p.name for p in by_name if p.default is p.empty))

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Turn a call's arguments into the keyword parameters sent over the wire."""
        if not args and kwargs.keys() <= self.names and self.required <= kwargs.keys():
            return dict(kwargs)  # the usual call, all by name: what Signature.bind would give
        try:
            bound = self.signature.bind(None, None, *args, **kwargs)
        except TypeError as exc:
            raise ValidationError(f"{self.qualified}: {exc}") from exc
        params = dict(bound.arguments)
        names = list(self.signature.parameters)
        params.pop(names[0])  # self
        params.pop(names[1])  # tx
        for name, parameter in self.signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD and name in params:
                params.update(params.pop(name))
        return params


class Executor(Protocol):
    def run_read(self, spec: MethodSpec, params: dict[str, Any]) -> Any: ...

    def run_write(self, spec: MethodSpec, params: dict[str, Any]) -> Any: ...

    def run_writes(self, calls: list[tuple[MethodSpec, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        """Several independent writes, in order: ``(True, result)`` or ``(False, exception)`` each."""
        ...


class Repository:
    """Base of every repository. Subclasses set ``name`` and decorate methods."""

    name: ClassVar[str] = ""
    methods: ClassVar[dict[str, MethodSpec]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.methods = {}
        for attribute, fn in list(vars(cls).items()):
            kind = getattr(fn, "__pando_op__", None)
            if kind is None:
                continue
            spec = MethodSpec(f"{cls.name}.{attribute}", cls, attribute, kind, inspect.signature(fn), fn)
            cls.methods[attribute] = spec
            setattr(cls, attribute, _dispatcher(spec))

    def __init__(self, executor: Executor) -> None:
        self._executor = executor


def _dispatcher(spec: MethodSpec) -> Callable:
    def call(self: Repository, *args: Any, **kwargs: Any) -> Any:
        params = spec.bind(args, kwargs)
        if spec.kind == WRITE:
            return self._executor.run_write(spec, params)
        return self._executor.run_read(spec, params)

    functools.update_wrapper(call, spec.function)
    call.__pando_op__ = spec.kind
    return call


class MethodRegistry:
    """Every repository method by qualified name; what ``db.write`` is allowed to run."""

    def __init__(self, repositories: Iterable[type[Repository]]) -> None:
        self.repositories: dict[str, type[Repository]] = {}
        self.methods: dict[str, MethodSpec] = {}
        for repo in repositories:
            if not repo.name:
                raise ValueError(f"repository {repo.__name__} has no name")
            if repo.name in self.repositories and self.repositories[repo.name] is not repo:
                raise ValueError(f"two repositories are named {repo.name!r}")
            self.repositories[repo.name] = repo
            for spec in repo.methods.values():
                self.methods[spec.qualified] = spec

    def get(self, qualified: str) -> MethodSpec | None:
        return self.methods.get(qualified)


def translate_db_error(exc: Exception, method: str, directory: Any = None) -> Exception:
    """Map driver errors to kinds that survive the wire (constraint, not found, validation, and
    a full disk when *directory*, the database's ``.pando/``, is given)."""
    import sqlite3

    if directory is not None:
        from .storage import storage_full

        full = storage_full(exc, directory)
        if full is not None:
            return type(full)(f"{method}: not written: {full}")

    if isinstance(exc, sqlite3.IntegrityError):
        return ConstraintError(f"{method}: {exc}")
    psycopg = sys.modules.get("psycopg")  # team mode: only when PostgreSQL is in use
    if psycopg is not None and isinstance(exc, psycopg.IntegrityError):
        return ConstraintError(f"{method}: {' '.join(str(exc).split())}")
    from sqlalchemy.exc import IntegrityError

    if isinstance(exc, IntegrityError):
        detail = str(exc.orig) if exc.orig is not None else str(exc)
        return ConstraintError(f"{method}: {detail}")
    return exc


class LocalExecutor:
    """Runs reads and writes against a local database (primary: read-write; secondary: reads)."""

    def __init__(self, db: Database, instance_id: str = "") -> None:
        self.db = db
        self.instance_id = instance_id

    def run_read(self, spec: MethodSpec, params: dict[str, Any]) -> Any:
        repo = spec.repository(self)
        with self.db.read() as tx:
            return spec.function(repo, tx, **params)

    def run_write(self, spec: MethodSpec, params: dict[str, Any]) -> Any:
        repo = spec.repository(self)
        try:
            if self.db.shared:  # PostgreSQL: with its idempotency key, retried once on a dropped connection
                return self.db.run_write(lambda tx: spec.function(repo, tx, **params), self.instance_id, spec.qualified)
            with self.db.write(self.instance_id) as tx:
                return spec.function(repo, tx, **params)
        except Exception as exc:
            translated = translate_db_error(exc, spec.qualified, self.db.storage_dir)
            if translated is exc:
                raise
            raise translated from exc

    def run_writes(self, calls: list[tuple[MethodSpec, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        """One transaction for all of *calls* (one COMMIT: a pipeline on the primary is a group
        commit too), each write in a SAVEPOINT of its own so that a failing one is undone alone;
        listeners hear the changes after COMMIT, one per table and kind of change."""
        if len(calls) < 2:
            return [self._outcome(spec, params) for spec, params in calls]
        db = self.db

        def apply(tx: WriteTx) -> tuple[list[tuple[bool, Any]], list[Change]]:
            outcomes: list[tuple[bool, Any]] = []
            changes: list[Change] = []
            part = tx.part()
            for spec, params in calls:
                part.changes = []
                try:
                    with tx.savepoint():
                        result = spec.function(spec.repository(self), part, **params)
                except Exception as exc:  # noqa: BLE001 - each write's own outcome
                    outcomes.append((False, translate_db_error(exc, spec.qualified, db.storage_dir)))
                else:
                    outcomes.append((True, result))
                    changes.extend(part.changes)
            return outcomes, changes

        try:
            if db.shared:  # PostgreSQL: the batch is one keyed write, retried once on a dropped connection
                outcomes, changes = db.run_write(apply, self.instance_id, f"batch of {len(calls)}")
            else:
                with db.write_lock, db.transaction(self.instance_id) as tx:
                    outcomes, changes = apply(tx)
        except Exception as exc:  # noqa: BLE001 - the transaction itself failed: nothing was written
            return [(False, translate_db_error(exc, spec.qualified, db.storage_dir)) for spec, _ in calls]
        if changes:
            db.notify(coalesce_changes(changes), self.instance_id)
        return outcomes

    def _outcome(self, spec: MethodSpec, params: dict[str, Any]) -> tuple[bool, Any]:
        try:
            return True, self.run_write(spec, params)
        except Exception as exc:  # noqa: BLE001 - the write's own outcome
            return False, exc


class Store:
    """The repositories of the core and of every enabled plugin, sharing one executor.

    ``store.sessions``, ``store.messages``, ``store.files``, ``store.projects``, plus each plugin
    repository under its ``name``. Swap the executor (``store.use(executor)``) to move from local
    writes to proxied writes or back, e.g. on promotion.
    """

    def __init__(self, registry: MethodRegistry, executor: Executor) -> None:
        self.registry = registry
        self._executor = executor
        self._repos: dict[str, Repository] = {}
        self._build()

    def _build(self) -> None:
        self._repos = {name: cls(self._executor) for name, cls in self.registry.repositories.items()}
        for name, repo in self._repos.items():
            if not hasattr(Store, name):  # found without __getattr__ (the store's own names still win)
                self.__dict__[name] = repo

    @property
    def executor(self) -> Executor:
        return self._executor

    def use(self, executor: Executor) -> None:
        self._executor = executor
        for repo in self._repos.values():
            repo._executor = executor

    def __getattr__(self, name: str) -> Repository:
        repos = self.__dict__.get("_repos", {})
        if name in repos:
            return repos[name]
        raise AttributeError(f"no repository named {name!r}")

    def repository(self, name: str) -> Repository:
        return self._repos[name]

    def pipeline(self, batch_size: int = 16) -> Pipeline:
        """Writes sent *batch_size* at a time instead of one by one (see :class:`Pipeline`)."""
        return Pipeline(self, batch_size)

    def names(self) -> list[str]:
        return sorted(self._repos)


MAX_PIPELINE_BATCH = 256  # the bus takes at most this many requests in one batch message


class PendingWrite:
    """A write issued through a :class:`Pipeline`: :meth:`result` returns what the repository
    method returns (or raises its error), sending the pipeline's batch first if it has not
    gone yet."""

    __slots__ = ("_pipeline", "_done", "_ok", "_value")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._done = False
        self._ok = False
        self._value: Any = None

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            self._pipeline.flush()
        if self._ok:
            return self._value
        raise self._value

    def exception(self) -> BaseException | None:
        if not self._done:
            self._pipeline.flush()
        return None if self._ok else self._value

    def _settle(self, ok: bool, value: Any) -> None:
        self._done, self._ok, self._value = True, ok, value


class Pipeline:
    """Writes collected and sent *batch_size* at a time: on a secondary one message carries a
    whole batch to the primary, which applies it in one transaction, each write on its own
    (one failing does not undo the others) and in the order issued. Bulk work -- importing,
    indexing, recording many files -- goes several times faster than one round trip per write.

        with store.pipeline() as pipe:
            for path, text in files:
                pipe.files.create(session_id=sid, path=path, content=text)

    A write method called on ``pipe.<repository>`` returns a :class:`PendingWrite` at once.
    Leaving the block sends what is left, waits for every answer and raises the first write's
    error if any failed (each :class:`PendingWrite` keeps its own). Reads are not pipelined:
    call them on the store. A pipeline belongs to the thread that made it.
    """

    def __init__(self, store: Store, batch_size: int = 16) -> None:
        if not 1 <= batch_size <= MAX_PIPELINE_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_PIPELINE_BATCH}")
        self._store = store
        self.batch_size = batch_size
        self._queued: list[tuple[MethodSpec, dict[str, Any], PendingWrite]] = []
        self._failure: BaseException | None = None  # the first failed write's error, for close()

    def __getattr__(self, name: str) -> _PipelinedRepository:
        repository = self._store.registry.repositories.get(name)
        if repository is None:
            raise AttributeError(f"no repository named {name!r}")
        proxy = self.__dict__[name] = _PipelinedRepository(self, repository)  # found directly next time
        return proxy

    def submit(self, spec: MethodSpec, params: dict[str, Any]) -> PendingWrite:
        """Queue one write (sent once *batch_size* are queued, or on :meth:`flush`)."""
        pending = PendingWrite(self)
        self._queued.append((spec, params, pending))
        if len(self._queued) >= self.batch_size:
            self.flush()
        return pending

    def flush(self) -> None:
        """Send the queued writes and wait for their answers."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        outcomes = self._store.executor.run_writes([(spec, params) for spec, params, _ in queued])
        for (_, _, pending), (ok, value) in zip(queued, outcomes, strict=True):
            pending._settle(ok, value)
            if not ok and self._failure is None:
                self._failure = value

    def close(self) -> None:
        """Send what is left; raise the first failed write's error."""
        self.flush()
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:  # writes issued before the error still go; the error is what the caller sees
            self.flush()
            self._failure = None


class _PipelinedRepository:
    """``pipe.<repository>``: its write methods queue into the pipeline."""

    def __init__(self, pipeline: Pipeline, repository: type[Repository]) -> None:
        self._pipeline = pipeline
        self._repository = repository

    def __getattr__(self, attribute: str) -> Callable[..., PendingWrite]:
        spec = self._repository.methods.get(attribute)
        if spec is None:
            raise AttributeError(f"{self._repository.name} has no method {attribute!r}")
        if spec.kind != WRITE:
            raise TypeError(f"{spec.qualified} is a read: reads are not pipelined, call it on the store")
        pipeline = self._pipeline

        def queue_write(*args: Any, **kwargs: Any) -> PendingWrite:
            return pipeline.submit(spec, spec.bind(args, kwargs))

        self.__dict__[attribute] = queue_write  # found directly next time
        return queue_write


__all__ = [
    "Change",
    "Executor",
    "LocalExecutor",
    "MethodRegistry",
    "MethodSpec",
    "PendingWrite",
    "Pipeline",
    "ReadTx",
    "Repository",
    "Store",
    "WriteTx",
    "read",
    "write",
]
