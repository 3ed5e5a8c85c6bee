"""The bus's worker queue alone: bounds by count and bytes, per client, and turns between clients."""

from __future__ import annotations

import threading

from pando_core.runtime.fair_queue import FairQueue


def _queue(**kw) -> FairQueue:
    options = {"max_requests": 100, "max_bytes": 1000, "client_max_requests": 10, "client_max_bytes": 400, "client_running": 1}
    return FairQueue(**{**options, **kw})


def test_clients_take_turns_whatever_the_order_they_queued_in() -> None:
    queue = _queue(client_running=10)
    for i in range(5):
        assert queue.offer("heavy", f"heavy-{i}", 1)
    assert queue.offer("light", "light-0", 1)
    taken = [queue.take() for _ in range(3)]
    assert taken == ["heavy-0", "light-0", "heavy-1"]


def test_one_client_keeps_at_most_its_share_of_workers_busy() -> None:
    queue = _queue(client_running=2)
    for i in range(4):
        assert queue.offer("a", f"a-{i}", 1)
    assert [queue.take(), queue.take()] == ["a-0", "a-1"]
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(queue.take()))
    waiter.start()
    waiter.join(0.05)
    assert waiter.is_alive() and not got  # a third worker waits: "a" already runs two
    queue.ran("a")
    waiter.join(5)
    assert got == ["a-2"]


def test_bounds_by_count_and_bytes_overall_and_per_client() -> None:
    queue = _queue()
    assert all(queue.offer("a", i, 10) for i in range(10))
    assert not queue.offer("a", "one too many", 10)  # client_max_requests
    assert queue.offer("b", "big", 390)
    assert not queue.offer("b", "over its bytes", 20)  # client_max_bytes
    assert queue.offer("c", "c-0", 300)
    assert not queue.offer("d", "over the total", 300)  # max_bytes
    assert queue.requests == 12 and queue.bytes == 790
    queue.release("a", 10)
    assert queue.offer("a", "room again", 10)


def test_a_request_alone_is_taken_however_large() -> None:
    queue = _queue()
    assert queue.offer("a", "huge", 5000)
    assert not queue.offer("b", "behind it", 1)
    assert queue.take() == "huge"
    queue.ran("a")
    queue.release("a", 5000)
    assert queue.requests == 0 and queue.bytes == 0
    assert queue.offer("b", "now", 1)


def test_close_wakes_every_waiting_worker() -> None:
    queue = _queue()
    results: list = []
    workers = [threading.Thread(target=lambda: results.append(queue.take())) for _ in range(3)]
    for worker in workers:
        worker.start()
    queue.close()
    for worker in workers:
        worker.join(5)
    assert results == [None, None, None]
    assert not queue.offer("a", "late", 1)
