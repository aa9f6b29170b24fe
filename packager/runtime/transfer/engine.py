"""The scheduler: a fixed pool of worker threads draining one priority queue of tasks.

Tasks are ordered by (job index, offset): workers crowd onto the earliest unfinished file, which
keeps each file's hash frontier moving (see ordered_hash) and gets whole files done early, while
idle workers spill over to the next files. Memory is bounded by workers x buffer_size whatever
the file sizes.

A job whose cache blob is being downloaded by another process waits in a side list polled by a
single thread; blocking a worker on the lock instead could deadlock two processes that each hold
some locks the other wants.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
from collections.abc import Callable
from functools import partial

from .cache import BlobCache
from .errors import FetchError, PermanentError
from .job import FileJob, RangeTask
from .progress import Reporter
from .settings import TransferSettings

_STOP = (float("inf"), 0, 0, None)


def backoff(attempt: int, settings: TransferSettings, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, so many workers hitting a 503 burst do not retry in step."""
    delay = min(settings.backoff_max, settings.backoff_base * 2 ** max(0, attempt - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_max))
    return delay


class Scheduler:
    def __init__(self, settings: TransferSettings, reporter: Reporter, cache: BlobCache | None):
        self.settings = settings
        self.reporter = reporter
        self.cache = cache
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._done = threading.Condition()
        self._remaining = 0
        self._waiting: list[FileJob] = []
        self._waiting_lock = threading.Lock()
        self._stopping = threading.Event()
        self.on_thread_exit: Callable[[], None] = lambda: None

    # --- queue -------------------------------------------------------------------------------
    def submit(self, job: FileJob, offset: int, fn: Callable[[], None]) -> None:
        self._queue.put((job.index, offset, next(self._seq), fn))

    def wait_for_lock(self, job: FileJob) -> None:
        with self._waiting_lock:
            self._waiting.append(job)

    def job_finished(self) -> None:
        with self._done:
            self._remaining -= 1
            self._done.notify_all()

    def run(self, jobs: list[FileJob], prepare: Callable[[FileJob], None]) -> None:
        self._remaining = len(jobs)
        threads = [threading.Thread(target=self._worker, name=f"pack-transfer-{i}", daemon=True)
                   for i in range(self.settings.workers)]
        waiter = threading.Thread(target=self._poll_locks, args=(prepare,), daemon=True,
                                  name="pack-transfer-locks")
        for job in jobs:
            self.submit(job, -1, partial(prepare, job))
        for t in threads:
            t.start()
        waiter.start()
        with self._done:
            while self._remaining > 0:
                self._done.wait()
        self._stopping.set()
        for _ in threads:
            self._queue.put(_STOP)
        for t in threads:
            t.join()
        waiter.join()

    def _worker(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item[3] is None:
                    return
                item[3]()
        finally:
            self.on_thread_exit()

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
