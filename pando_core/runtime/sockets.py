"""Socket plumbing shared by the bus and the client: multipart send/receive without pyzmq's
per-call checks, a bounded busy-poll, and the wake-up byte of an I/O thread.

pyzmq's ``send_multipart``/``recv_multipart`` type-check every part and ask the socket for
``RCVMORE`` after every frame; on a round trip of a few hundred microseconds those checks (and a
``zmq.Again`` raised to find a queue empty) cost more than the frames themselves.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

import zmq

_SEND_MORE = zmq.NOBLOCK | zmq.SNDMORE
yield_core = getattr(os, "sched_yield", lambda: None)
"""Give this thread's core to another runnable thread (a no-op where the OS has no sched_yield)."""


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send a multipart message without blocking (``zmq.Again`` / ``ZMQError`` as ``send``
    raises them). Only the first frame can fail: ZeroMQ takes the rest of a message once its
    first frame is in."""
    send = sock.send
    for frame in frames[:-1]:
        send(frame, _SEND_MORE)
    send(frames[-1], zmq.NOBLOCK)


def recv_frames(sock: zmq.Socket) -> list[bytes]:
    """Receive one whole multipart message without blocking (``zmq.Again`` when none is
    queued). The frames' own ``more`` flag says where the message ends."""
    frame = sock.recv(zmq.NOBLOCK, copy=False)
    frames: list[bytes] = []
    try:
        frames.append(frame.bytes)
        while frame.more:
            frame = sock.recv(zmq.NOBLOCK, copy=False)  # a message arrives whole: the rest is here
            frames.append(frame.bytes)
    except MemoryError:
        size = len(frame)
        try:
            head = bytes(frame.buffer[:600])  # enough to find a request id (no copy of the rest)
        except MemoryError:
            head = b""
        while frame.more:  # the rest of this message goes too: the next one starts at its first frame
            frame = sock.recv(zmq.NOBLOCK, copy=False)
        del frame
        raise MessageDropped(frames, size, head) from None
    return frames


class MessageDropped(Exception):
    """A received message could not be taken whole (no memory to copy one of its frames); it
    was discarded. *frames*: those copied before it (the routing id first, on a ROUTER);
    *size*: the failing frame's length; *head*: its first bytes."""

    def __init__(self, frames: list[bytes], size: int, head: bytes) -> None:
        super().__init__(f"no memory to receive a frame of {size} bytes")
        self.frames, self.size, self.head = frames, size, head


def spin_poll(poller: zmq.Poller, until: float) -> list:
    """Poll without sleeping until something is ready or *until* (``perf_counter``) passes, then
    return what is ready ([] if nothing).  A reply or a next request that is due within a few
    hundred microseconds is cheaper to catch awake than through a wake-up; each zero-timeout
    poll releases the GIL, so other threads run meanwhile.

    Between polls the thread yields its core: what the spinner waits for is itself carried by
    other threads (ZeroMQ's I/O threads, the peer process), and a spinner that only gives way
    when the scheduler preempts it delays them (measured on 2 cores: a proxied write 0.203 ->
    0.175 ms, a ping 0.108 -> 0.095 ms; see bench/ipc.py). With a core to spare,
    ``sched_yield`` returns at once."""
    poll, clock, give_way = poller.poll, time.perf_counter, yield_core
    while clock() < until:
        ready = poll(0)
        if ready:
            return ready
        give_way()
    return []


class Wakeup:
    """The wake-up byte of an I/O thread: a ``socket.socketpair`` whose read end the thread polls
    next to its ZeroMQ sockets.  Shared by the bus and :class:`~pando_core.runtime.client.Client`."""

    def __init__(self) -> None:
        self.r, self._w = socket.socketpair()
        self.r.setblocking(False)
        self._w.setblocking(False)
        #: what to register with a ``zmq.Poller`` (it reports plain sockets by their fd)
        self.fd = self.r.fileno()

    def signal(self) -> None:
        """Wake the polling thread (a full buffer already wakes it; a closed pair is ignored)."""
        with contextlib.suppress(OSError):
            self._w.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self.r.recv(4096):
                pass

    def close(self) -> None:
        for s in (self.r, self._w):
            with contextlib.suppress(OSError):
                s.close()
