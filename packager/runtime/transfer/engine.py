"""The scheduler: a fixed pool of worker threads draining one priority queue of tasks.

Files go in groups of `files_in_flight` (as many as workers, by default): a group's ranges are
handed out breadth-first (the first range of each of its files, then the second of each, ...),
and workers spill over to the next group only when this one has nothing left to hand out. Every
file of a group has a worker at its hash frontier, hashing from memory as the bytes arrive (see
ordered_hash), so the group's digests run on all cores at once, while groups still complete in
manifest order. Memory is bounded by workers x buffer_size whatever the file sizes.

A worker takes an item only while holding a slot of the StreamGate, whose limit the governor
raises from the core count toward `workers` while the streams wait on the network, and lowers
again while they saturate the CPUs (governor.py).

Background priority (settings.worker_nice > 0, used by the in-image prefetch): the workers start
niced, so a CPU-bound `import torch` running beside them keeps its core instead of getting a fair
share against eight download threads (on 2 cores it waited about 0.9 s of a 3 s import).
Priority cannot be raised again without CAP_SYS_NICE, which containers lack, so `Priority.boost()`
(called once someone waits for the weights) starts a second set of workers from the caller's
thread, which is not niced, and retires the niced ones: each keeps the bytes its socket already
holds, hands the rest of its range back to the queue at the next buffer and exits.

A job whose cache blob is being downloaded by another process waits in a side list polled by a
single thread; blocking a worker on the lock instead could deadlock two processes that each hold
some locks the other wants.
"""

from __future__ import annotations

import itertools
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from functools import partial

from .cache import BlobCache
from .errors import FetchError, PermanentError
from .governor import Governor, StreamGate, WaitClock
from .job import FileJob, RangeTask
from .progress import Reporter
from .settings import TransferSettings

_STOP = (float("inf"), 0, 0, 0, None)
_worker_state = threading.local()


class Handoff(Exception):
    """Raised inside a retired (niced) worker: put the range back for a boosted worker."""


class Priority:
    """Lifts a transfer out of background priority from another thread (see module docstring).

    boost() may come before the scheduler runs (then it starts at normal priority) or while it
    runs; the thread that calls it must itself run at normal priority, as new workers inherit
    their creator's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scheduler: Scheduler | None = None
        self.boosted = False

    def attach(self, scheduler: Scheduler | None) -> bool:
        with self._lock:
            self._scheduler = scheduler
            return self.boosted

    def boost(self) -> None:
        with self._lock:
            if self.boosted:
                return
            self.boosted = True
            scheduler = self._scheduler
        if scheduler is not None:
            scheduler.boost()


def lower_thread_priority(increment: int) -> None:
    """Nice the calling thread only (Linux nice values are per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (OSError, AttributeError):
        pass  # not Linux, or not permitted: run at normal priority


def backoff(attempt: int, settings: TransferSettings, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, so many workers hitting a 503 burst do not retry in step."""
    delay: float = min(settings.backoff_max, settings.backoff_base * 2 ** max(0, attempt - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_max))
    return delay


class Scheduler:
    def __init__(self, settings: TransferSettings, reporter: Reporter, cache: BlobCache | None,
                 priority: Priority | None = None):
        self.settings = settings
        self.priority = priority
        self._generation = 0  # 0: niced workers (when worker_nice), 1: after boost()
        self.local_wait = WaitClock()  # streams asleep on the disk or the hash (governor.py)
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self.reporter = reporter
        self.cache = cache
        # (file group, range ordinal, file index, sequence, work), lowest first; _STOP (no work) ends a worker
        self._queue: queue.PriorityQueue[tuple[float, int, int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._done = threading.Condition()
        self._remaining = 0
        self._waiting: list[FileJob] = []
        self._waiting_lock = threading.Lock()
        self._stopping = threading.Event()
        self._gate = StreamGate(settings.streams or settings.workers)
        self._tids: list[int] = []
        self.on_thread_exit: Callable[[], None] = lambda: None

    # --- queue -------------------------------------------------------------------------------
    def submit(self, job: FileJob, offset: int, fn: Callable[[], None]) -> None:
        """Queue `fn` for the range at `offset` of `job` (-1: the job's preparation)."""
        ordinal = offset // self.settings.chunk_size if offset >= 0 else -1
        group = job.index // self.settings.files_in_flight
        self._queue.put((group, ordinal, job.index, next(self._seq), fn))

    def wait_for_lock(self, job: FileJob) -> None:
        with self._waiting_lock:
            self._waiting.append(job)

    def job_finished(self) -> None:
        with self._done:
            self._remaining -= 1
            self._done.notify_all()

    def run(self, jobs: list[FileJob], prepare: Callable[[FileJob], None]) -> None:
        self._remaining = len(jobs)
        boosted = self.priority.attach(self) if self.priority else False
        self._generation = 1 if boosted or self.settings.worker_nice <= 0 else 0
        waiter = threading.Thread(target=self._poll_locks, args=(prepare,), daemon=True,
                                  name="pack-transfer-locks")
        governor = None
        if self._gate.limit < self.settings.workers:
            governor = threading.Thread(
                target=Governor(self._gate, self.settings.workers, self._worker_tids,
                                self._has_backlog, self._stopping, self.local_wait).run,
                daemon=True, name="pack-transfer-governor")
        for job in jobs:
            self.submit(job, -1, partial(prepare, job))
        with self._threads_lock:
            self._start_workers(self._generation)
        waiter.start()
        if governor:
            governor.start()
        try:
            with self._done:
                while self._remaining > 0:
                    self._done.wait()
        finally:
            if self.priority:
                self.priority.attach(None)
            with self._threads_lock:
                self._stopping.set()
                threads = list(self._threads)
            self._gate.open()
            for _ in threads:
                self._queue.put(_STOP)
            for t in threads:
                t.join()
            waiter.join()
            if governor:
                governor.join()

    @property
    def peak_streams(self) -> int:
        return self._gate.peak_limit

    def _worker_tids(self) -> list[int]:
        with self._threads_lock:
            return list(self._tids)

    def _has_backlog(self) -> bool:
        return not self._queue.empty()

    def boost(self) -> None:
        """Replace niced workers with normal-priority ones started from this thread."""
        with self._threads_lock:
            if self._generation != 0 or self._stopping.is_set():
                return
            self._generation = 1
            self._start_workers(1)

    def _start_workers(self, generation: int) -> None:
        """Caller holds _threads_lock."""
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._worker, args=(generation,), daemon=True,
                                 name=f"pack-transfer-{generation}-{i}")
            self._threads.append(t)
            t.start()

    def is_retired(self) -> bool:
        """True in a niced worker that boost() has replaced."""
        return getattr(_worker_state, "generation", self._generation) != self._generation

    def _worker(self, generation: int) -> None:
        _worker_state.generation = generation
        with self._threads_lock:
            self._tids.append(threading.get_native_id())
        if generation == 0:
            lower_thread_priority(self.settings.worker_nice)
        # A niced worker polls, so that once retired it exits even with nothing left to take.
        timeout = 0.25 if generation == 0 else None
        try:
            while True:
                while not self._gate.enter(timeout):
                    if generation != self._generation:
                        return
                if not self._serve(generation, timeout):
                    return
        finally:
            self.on_thread_exit()

    def _serve(self, generation: int, timeout: float | None) -> bool:
        """Run queued items on a held slot. A slot is kept from item to item, so the same few
        threads keep their warm connections and buffers, until the governor lowers the limit
        below the slots in use. True: the slot went back for that reason; False: exit."""
        try:
            while self._take_one(generation, timeout):
                if self._gate.over_limit():
                    return True
            return False
        finally:
            self._gate.leave()

    def _take_one(self, generation: int, timeout: float | None) -> bool:
        """Run one queued item; False: this worker must exit."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return generation == self._generation
        if item[-1] is None:
            return False
        if generation != self._generation:
            self._queue.put(item)  # retired: a boosted worker takes it
            return False
        item[-1]()
        return True

    def _poll_locks(self, prepare: Callable[[FileJob], None]) -> None:
        assert self.cache is not None or not self._waiting
        while not self._stopping.wait(0.05):
            with self._waiting_lock:
                waiting, self._waiting = self._waiting, []
            still = []
            for job in waiting:
                lock = self.cache.try_lock(job.key) if self.cache else None
                if lock is None:
                    still.append(job)
                    continue
                job.lock = lock
                self.submit(job, -1, partial(prepare, job))
            with self._waiting_lock:
                self._waiting.extend(still)

    # --- retries -----------------------------------------------------------------------------
    def retry_or_raise(self, task: RangeTask, exc: FetchError) -> None:
        """Sleep before the next attempt of a transient failure; re-raise when out of budget."""
        if not exc.transient:
            raise exc
        task.attempts += 1
        if task.attempts >= self.settings.attempts_per_range:
            raise PermanentError(f"{exc.message} (gave up after {task.attempts} attempts)")
        with task.job.mutex:
            task.job.retries += 1
        self.reporter.retry(task.job.targets[0].final, task.attempts + 1, exc.message)
        time.sleep(backoff(task.attempts, self.settings, exc.retry_after))
