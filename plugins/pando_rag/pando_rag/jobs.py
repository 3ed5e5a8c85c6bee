"""Long work (a folder import, a code index, a re-embed) as jobs: started at once, run one at a
time on one worker thread of the engine, polled by id for progress (``done``/``total``), kept in
memory (the last 100)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pando_core.errors import NotFoundError, one_line

KEEP_JOBS = 100


class Job(dict):
    """A job's JSON state; ``progress(done, total, item)`` updates it from the worker."""

    def progress(self, done: int, total: int, item: str = "") -> None:
        self.update(done=done, total=total, item=item, progress=round(100.0 * done / max(1, total), 1))


class JobRunner:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-jobs")
        self.closing = threading.Event()

    def start(self, kind: str, work: Callable[[Job], Any], **fields: Any) -> dict:
        job = Job(job_id=f"job-{uuid.uuid4().hex[:12]}", kind=kind, status="queued", done=0, total=0, progress=0.0, item="", started_at=time.time(), **fields)
        with self._lock:
            self._jobs[job["job_id"]] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        self._worker.submit(self._run, job, work)
        return self.get(job["job_id"])

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        job["status"] = "running"
        try:
            result = work(job)
        except Exception as exc:  # noqa: BLE001 - the job reports it, the worker goes on
            job.update(status="failed", error=one_line(exc, 300) or type(exc).__name__, error_kind=getattr(exc, "kind", "error"))
        else:
            if job.get("status") == "running":
                job["status"] = "cancelled" if self.closing.is_set() else "completed"
            job["result"] = result
        finally:
            job["finished_at"] = time.time()

    def get(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"no job {job_id!r} (jobs live as long as the primary that runs them)")
            return json.loads(json.dumps(job, default=str))

    def wait(self, job_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def close(self) -> None:
        self.closing.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
