"""Password hashing off the request threads: a few low-priority threads and a short queue.

Argon2 is the one CPU-heavy thing an anonymous client can make the server do. pwdlib's hashes
use 4 lanes, and libargon2 runs each lane on its own thread, so a single check can fill every
core of a small machine. Three rules keep a flood of wrong passwords from slowing everyone else:

- at most half the cores' worth of checks run at once (``workers``), and on Linux the threads
  that run them are pinned to that half of the cores: libargon2's lane threads inherit their
  creator's CPU affinity, so the hashing can never take the other half, where the request
  threads run freely;
- those threads (and so the lane threads) also run at the lowest priority, nice 19 (Linux
  threads inherit their creator's nice value): a request or a database process that lands on a
  hashing core still gets it first (its weight is 1024 to the hashing's 15);
- at most ``queue`` checks wait for a thread; the next one is refused at once with
  ``TooManyAttempts`` (429, ``Retry-After``) instead of holding one of the server's request
  threads while it waits.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from b12plan.service.errors import TooManyAttempts

T = TypeVar("T")

HASHING_NICE = 19  # the lowest priority of an ordinary Linux thread
# Waiting checks each hold one of the server's request threads (anyio's default limit is 40):
# this many leaves most of them for everything else.
DEFAULT_QUEUE = 16


def default_workers() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


def hashing_cpus(workers: int) -> frozenset[int]:
    """The last ``workers`` of the CPUs this process may use (all of them if that is fewer)."""
    if not hasattr(os, "sched_getaffinity"):
        return frozenset()
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset(cpus[-workers:]) if len(cpus) > workers else frozenset(cpus)


def set_up_hashing_thread(cpus: frozenset[int]) -> None:
    """Pin the calling thread to ``cpus`` at the lowest priority (Linux: both are per thread and
    inherited by the threads it starts). Elsewhere the pool only bounds and queues."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        if cpus:
            os.sched_setaffinity(tid, cpus)
        os.setpriority(os.PRIO_PROCESS, tid, HASHING_NICE)


class HashingPool:
    """Runs password hashing and verification as the module docstring describes."""

    def __init__(self, workers: int | None = None, queue: int = DEFAULT_QUEUE) -> None:
        self.workers = workers or default_workers()
        self.cpus = hashing_cpus(self.workers)
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix="b12plan-hashing",
            initializer=set_up_hashing_thread,
            initargs=(self.cpus,),
        )
        self._places = threading.BoundedSemaphore(self.workers + queue)

    def run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` on a hashing thread; the caller waits for its result.

        Raises ``TooManyAttempts`` when every thread is busy and the queue is full."""
        if not self._places.acquire(blocking=False):
            raise TooManyAttempts(1, "the server is checking too many passwords; try again")
        try:
            return self._executor.submit(work, *args).result()
        finally:
            self._places.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@functools.cache
def shared_pool() -> HashingPool:
    """The process's pool: the cores are the process's, however many services it builds."""
    return HashingPool()
