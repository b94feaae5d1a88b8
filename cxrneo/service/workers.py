"""Bounded work for `cxrneo serve`: the heavy work of requests (an upload decoded and embedded, a
similarity map, an upload rendered) runs in a few worker threads of its own behind a bounded queue,
and every request has a deadline.

* A heavy job that finds every worker busy and the queue full is refused at once (BusyError: 503
  with Retry-After); the page's files, /health and stored-id queries never wait behind heavy work,
  which has threads of its own.
* Past its deadline a request is answered 503 and its work abandoned: a queued job never starts, a
  running one notices at its next `check_deadline()` (between files, before a forward pass) or runs
  to its end with its result thrown away; every such job is bounded by the pixel budgets.
* The worker threads are daemons: a service told to stop never waits for them.
"""

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from cxrneo.errors import BusyError

T = TypeVar("T")
_local = threading.local()


def check_deadline() -> None:
    """In a worker: give up (BusyError) when the request this job serves is past its deadline."""
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise BusyError("the request ran past the service's deadline; try again, or with a smaller image")


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    deadline: float
    future: Future[Any] = field(default_factory=Future)


class Workers:
    """``threads`` worker threads behind a queue of ``waiting`` jobs; each job has ``deadline`` seconds."""

    def __init__(self, threads: int = 2, waiting: int = 8, deadline: float = 30.0) -> None:
        if threads < 1 or waiting < 0 or deadline <= 0:
            raise ValueError("heavy workers need at least one thread, a queue of 0 or more and a positive deadline")
        self.threads, self.waiting, self.deadline = threads, waiting, deadline
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._admitted = 0  # queued or running
        self.refused = 0
        self.abandoned = 0
        for n in range(threads):
            threading.Thread(target=self._work, name=f"cxrneo-heavy-{n}", daemon=True).start()

    def stats(self) -> dict[str, int]:
        """Jobs queued or running now, and how many were refused or abandoned so far."""
        with self._lock:
            return {"admitted": self._admitted, "capacity": self.threads + self.waiting, "refused": self.refused,
                    "abandoned": self.abandoned}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, within the deadline; BusyError at once when the queue is full."""
        with self._lock:
            if self._admitted >= self.threads + self.waiting:
                self.refused += 1
                raise BusyError("the service is busy with other images; try again in a moment")
            self._admitted += 1
        job = _Job(fn, args, time.monotonic() + self.deadline)
        self._jobs.put(job)
        try:
            result: T = await asyncio.wait_for(asyncio.wrap_future(job.future), self.deadline)
            return result
        except TimeoutError:
            with self._lock:
                self.abandoned += 1
            raise BusyError(f"no answer within the service's deadline of {self.deadline:g} s; try again later") from None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            settle = _do(job)
            with self._lock:
                self._admitted -= 1  # the slot is free before the waiting request hears the outcome
            if settle is not None:
                settle()


def _do(job: "_Job") -> Callable[[], None] | None:
    """Run a job unless it was abandoned while it waited; what hands its outcome to the request."""
    if not job.future.set_running_or_notify_cancel() or time.monotonic() > job.deadline:
        return None
    _local.deadline = job.deadline
    try:
        value = job.fn(*job.args)
        return lambda: job.future.set_result(value)
    except BaseException as e:  # noqa: BLE001 - handed to the waiting request as it is
        return lambda error=e: job.future.set_exception(error)  # type: ignore[misc]
    finally:
        _local.deadline = None


async def in_time(deadline: float, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the shared thread pool, answered BusyError past ``deadline`` seconds (the thread
    is left to finish on its own; light work only)."""
    try:
        with anyio.fail_after(deadline):
            return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True)
    except TimeoutError:
        raise BusyError(f"no answer within the service's deadline of {deadline:g} s; try again later") from None
