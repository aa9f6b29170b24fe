"""What a worker does with a job: prepare it, stream its ranges to disk, verify, publish."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from functools import partial

from .buffers import BufferPool
from .cache import BlobCache, link_or_copy
from .digests import Hasher, new_hasher, verification_label
from .direct_io import ALIGN, align_down, open_direct, unsupported
from .engine import Handoff, Scheduler
from .errors import FetchError, PermanentError, TransientError
from .job import FileJob, RangeTask, split
from .journal import Journal, JournalHeader, missing
from .layout import (
    Marker,
    journal_path,
    marker_matches,
    partial_path,
    remove_quietly,
    write_marker,
)
from .ordered_hash import OrderedHasher
from .progress import Reporter
from .results import CACHED, DOWNLOADED, FAILED, PRESENT, FileResult
from .settings import TransferSettings
from .sources import Body, SourceFactory


# How long a direct-I/O writer ahead of its file's hash frontier waits for room to keep its buffer
# in memory before it leaves the bytes to a disk read-back (ordered_hash.py). Only a frontier
# range stuck in the queue (all streams waiting) makes the wait run out.
_WAIT_FOR_ROOM = 0.5


class Transfer:
    def __init__(self, settings: TransferSettings, reporter: Reporter, sources: SourceFactory,
                 cache: BlobCache | None, scheduler: Scheduler):
        self.settings, self.reporter, self.sources = settings, reporter, sources
        self.cache, self.scheduler = cache, scheduler
        self.results: list[FileResult] = []
        self._results_lock = threading.Lock()
        self._local = threading.local()
        self._made_dirs: set[str] = set()
        self.pool = BufferPool(settings.buffer_size,
                               held_limit=settings.hash_window_bytes // settings.buffer_size,
                               clock=scheduler.local_wait)

    def _makedirs(self, path: str) -> None:
        """os.makedirs once per directory per run (a stat per level per file otherwise)."""
        if path not in self._made_dirs:
            os.makedirs(path, exist_ok=True)
            self._made_dirs.add(path)

    # --- prepare -----------------------------------------------------------------------------
    def prepare(self, job: FileJob) -> None:
        try:
            self._prepare(job)
        except Exception as exc:  # noqa: BLE001 - anything unexpected fails this file, never hangs the run
            self.fail(job, exc)

    def _prepare(self, job: FileJob) -> None:
        job.start_clock()
        if all(marker_matches(t.final, t.entry, t.marker_file) for t in job.targets) and self._still_linked(job):
            self._release_lock(job)
            return self._complete(job, PRESENT)
        if self.cache is not None:
            if self.cache.has(job.key, job.size):
                self._release_lock(job)
                return self._place_cached(job)
            if job.lock is None:
                job.lock = self.cache.try_lock(job.key)
                if job.lock is None:  # another process is downloading it: wait, then link
                    return self.scheduler.wait_for_lock(job)
                if self.cache.has(job.key, job.size):
                    self._release_lock(job)
                    return self._place_cached(job)
        elif self._verify_existing(job):
            return self._complete(job, PRESENT)
        self._start_download(job, fresh=False)

    def _still_linked(self, job: FileJob) -> bool:
        """A destination symlinked to a cache blob (an earlier run of this container) is only
        present while the blob is; it is pinned again for this run's instance."""
        if self.cache is None or not any(self.cache.links_here(t.final) for t in job.targets):
            return True
        return self.cache.hold(job.key)

    def _place_cached(self, job: FileJob) -> None:
        assert self.cache is not None
        try:
            for t in job.targets:
                self.cache.place(job.key, t.final)
                write_marker(t.marker_file, Marker.for_file(t.final, t.entry.hash.algorithm,
                                                            t.entry.hash.digest))
        except FileNotFoundError:
            if self.cache.has(job.key, job.size):
                raise
            return self._prepare(job)  # evicted by another process meanwhile: fetch it again
        self._complete(job, CACHED)

    def _verify_existing(self, job: FileJob) -> bool:
        """A destination with the right size but no marker is hashed once instead of re-fetched."""
        target = job.targets[0]
        if len(job.targets) != 1 or not os.path.isfile(target.final):
            return False
        if os.path.getsize(target.final) != job.size:
            return False
        hasher = new_hasher(job.entry.hash.algorithm, job.size, self.settings.pure_crc32c_limit)
        if hasher is None:
            return False  # size alone is never proof
        buf = self._buffer()
        with open(target.final, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                hasher.update(buf[:n])
        if hasher.hexdigest() != job.entry.hash.digest.lower():
            return False
        job.verification = job.entry.hash.algorithm
        write_marker(target.marker_file, Marker.for_file(target.final, job.entry.hash.algorithm,
                                                         job.entry.hash.digest))
        return True

    def _start_download(self, job: FileJob, fresh: bool) -> None:
        entry, size = job.entry, job.size
        if job.source is None:
            job.source = self.sources.make(entry)
        job.work_path = self.cache.partial(job.key) if self.cache else partial_path(job.targets[0].final)
        self._makedirs(os.path.dirname(job.work_path))
        header = JournalHeader(size=size, algorithm=entry.hash.algorithm, digest=entry.hash.digest,
                               source=job.description)
        job.journal = Journal(journal_path(job.work_path), header)
        done = [] if fresh else job.journal.load()
        if done:
            job.fd = os.open(job.work_path, os.O_RDWR | os.O_CREAT, 0o644)
            if os.fstat(job.fd).st_size != size:
                done = []
                os.close(job.fd)
                job.fd = -1
        if not done:
            # A stale partial file is replaced, never truncated to zero: ext4 (auto_da_alloc)
            # flushes a file that was truncated to zero when it is closed, which made the close
            # before the rename write the whole download out synchronously (~0.2 s per 512 MiB).
            remove_quietly(job.work_path)
            job.fd = os.open(job.work_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(job.fd, size)  # pre-sized (sparse): ranges land with pwrite in place
        if self.settings.direct_io:
            job.direct_fd = open_direct(job.work_path)
        ranges = split(missing(size, done), self.settings.chunk_size, self.settings.streams)
        if not done and len(ranges) <= 1:
            job.journal.disable()  # one range: nothing to resume from, no journal file
        job.journal.open(fresh=not done)
        hasher = new_hasher(entry.hash.algorithm, size, self.settings.pure_crc32c_limit)
        job.verification = verification_label(entry.hash.algorithm, hasher)
        job.hasher = self._ordered_hasher(job, hasher)
        for iv in done:
            job.hasher.seed(iv.start, iv.end)
        job.resumed_bytes = sum(iv.length for iv in done)
        if not ranges:
            return self._finalize(job)
        tasks = [RangeTask(job, s, e, s) for s, e in ranges]
        job.pending = len(tasks)
        job.range_support = True if job.source.ranges_known else None
        if job.range_support:
            job.deferred = []
        else:  # ask once; the answer decides between ranged parallel and one streaming GET
            tasks[0].probe = True
            job.deferred = tasks[1:]
            tasks = tasks[:1]
        if len(tasks) == 1 and not job.deferred:
            # A small file is one range: this worker fetches it now, without a trip through the
            # queue (a put, a wake-up and a thread switch per file add up over many small files).
            return self.run_range(tasks[0])
        for task in tasks:
            self.scheduler.submit(job, task.start, partial(self.run_range, task))

    def _ordered_hasher(self, job: FileJob, hasher: Hasher | None) -> OrderedHasher:
        ordered = OrderedHasher(hasher, job.fd, job.size, should_yield=self.scheduler.is_retired,
                                pool=self.pool, direct_fd=job.direct_fd,
                                wait_for_room=_WAIT_FOR_ROOM if job.direct_fd >= 0 else 0.0)
        # A retired worker left this file's hashing halfway: a worker carries on from the frontier
        # (unless the file was restarted meanwhile and has another hasher).
        def kick() -> None:
            if job.hasher is ordered:
                ordered.kick()

        ordered.on_yield = partial(self.scheduler.submit, job, -1, partial(self._queued, job, kick))
        return ordered

    def _queued(self, job: FileJob, work: Callable[[], None]) -> None:
        """A piece of a job's work run from the queue: an error fails the file, not the worker."""
        if job.finished:
            return
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - as in run_range
            self.fail(job, exc)

    # --- ranges ------------------------------------------------------------------------------
    def run_range(self, task: RangeTask) -> None:
        job = task.job
        with job.mutex:
            if job.finished:
                return
            job.inflight += 1
        try:
            while not job.finished:
                try:
                    self._stream(task)
                    break
                except FetchError as exc:
                    if job.finished:
                        return
                    self.scheduler.retry_or_raise(task, exc)
            if not job.finished:
                self._range_done(task)
        except Handoff:  # this worker was retired by a boost: the rest goes back to the queue
            self.scheduler.submit(job, task.start, partial(self.run_range, task))
        except Exception as exc:  # noqa: BLE001 - a bug or disk error fails the file, not the run
            self.fail(job, exc)
        finally:
            self._leave(job)

    def _buffer(self) -> memoryview:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = self.pool.take()
        return buf

    def _stream(self, task: RangeTask) -> None:
        job = task.job
        source, _, _ = job.parts()
        body = source.open(task.pos, task.end)
        complete = False
        try:
            if (body.start, body.end) != (task.pos, task.end):
                if task.probe and job.range_support is not True and (body.start, body.end) == (0, job.size):
                    self._single_stream(job, task)
                else:
                    raise TransientError(f"{job.description}: asked bytes {task.pos}-{task.end}, "
                                         f"server sent {body.start}-{body.end}")
            elif task.probe and job.range_support is None and job.deferred:
                job.range_support = True
                deferred, job.deferred = job.deferred, []
                for t in deferred:
                    self.scheduler.submit(job, t.start, partial(self.run_range, t))
            deadline = time.monotonic() + self.settings.stall_timeout + \
                (task.end - task.pos) / self.settings.min_bytes_per_second
            fill = 0  # bytes read into the buffer, not yet written (direct I/O writes whole blocks)
            while task.pos < task.end:
                if job.finished:
                    return
                # A Range-less server would restart at 0: such a stream is never handed off.
                if job.range_support is not False and self.scheduler.is_retired():
                    self._hand_off(task, body, fill)
                    continue  # the drain may have finished the range
                mv = self._buffer()
                n = body.readinto(mv[fill: min(len(mv), task.end - task.pos)])
                if not n:
                    raise TransientError(
                        f"{job.description}: truncated response, connection closed after "
                        f"{task.pos + fill - task.start} of {task.end - task.start} bytes")
                fill = self._store(task, fill + n)
                if time.monotonic() > deadline:
                    raise TransientError(f"{job.description}: too slow (below "
                                         f"{self.settings.min_bytes_per_second} B/s)")
            complete = True
        finally:
            body.close(complete)

    def _store(self, task: RangeTask, fill: int, flush: bool = False) -> int:
        """Write the first `fill` bytes of this thread's buffer at task.pos and hand them to the
        hasher. Returns how many stay unwritten at the front of the buffer: with direct I/O, a
        block not complete yet waits for its rest (unless `flush` or the range ends there)."""
        job, buf = task.job, self._buffer()
        data = buf[:fill]
        n = self._write(job, data, task.pos, whole_blocks=not flush and task.pos + fill < task.end)
        if not n:
            return fill
        nxt = job.parts()[2].wrote(task.start, task.pos, data[:n], buf)
        if nxt is not buf:
            self._local.buf = nxt  # the hasher keeps `buf` until its frontier gets there
        if n < fill:
            nxt[: fill - n] = bytes(data[n:])
        task.pos += n
        job.add_bytes(n)
        self.reporter.advance(n)
        return fill - n

    def _write(self, job: FileJob, data: memoryview, offset: int, whole_blocks: bool) -> int:
        """Write data at offset; returns how many bytes were written. That is all of them,
        except with direct I/O and `whole_blocks`, where only whole blocks are."""
        done = 0
        if job.direct_fd >= 0 and not job.direct_refused and offset % ALIGN == 0:
            whole = align_down(len(data))
            start = time.monotonic_ns()
            try:
                while done < whole:
                    done += os.pwrite(job.direct_fd, data[done:whole], offset + done)
                if whole_blocks:
                    return done
            except OSError as exc:
                if not unsupported(exc):
                    raise
                job.direct_refused = True  # through the page cache from here on
            finally:  # asleep while the device takes it: not a stream waiting on the network
                self.scheduler.local_wait.add(time.monotonic_ns() - start)
        with job.write_lock:
            while done < len(data):
                done += os.pwrite(job.fd, data[done:], offset + done)
        return done

    def _hand_off(self, task: RangeTask, body: Body, fill: int) -> None:
        """A retired worker keeps the bytes that already arrived (a socket buffer can hold
        megabytes), then gives the rest of the range back; the connection is dropped."""
        while task.pos < task.end:
            mv = self._buffer()
            n = body.read_ready(mv[fill: min(len(mv), task.end - task.pos)])
            if not n:
                if fill:
                    self._store(task, fill, flush=True)
                raise Handoff()
            fill = self._store(task, fill + n)

    def _single_stream(self, job: FileJob, task: RangeTask) -> None:
        """The server ignores Range: this one task now streams the whole file from byte 0."""
        job.range_support = False
        job.deferred = []
        job.pending = 1
        task.start, task.end, task.pos = 0, job.size, 0
        hasher = new_hasher(job.entry.hash.algorithm, job.size, self.settings.pure_crc32c_limit)
        job.parts()[2].discard()
        job.hasher = self._ordered_hasher(job, hasher)
        job.resumed_bytes = 0
        journal = job.parts()[1]
        journal.close()
        journal.open(fresh=True)  # earlier ranges are rewritten: their records are void

    def _range_done(self, task: RangeTask) -> None:
        job = task.job
        job.parts()[1].record(task.start, task.end)
        with job.mutex:
            job.pending -= 1
            last = job.pending == 0
        if last and self.scheduler.is_retired():  # the final hashing is no job for a niced thread
            self.scheduler.submit(job, -1, partial(self._queued, job, partial(self._finalize, job)))
        elif last:
            self._finalize(job)

    # --- verify and publish ------------------------------------------------------------------
    def _finalize(self, job: FileJob) -> None:
        _, journal, hasher = job.parts()
        digest = hasher.finish()
        actual_size = os.fstat(job.fd).st_size
        expected = job.entry.hash.digest.lower()
        cause = None
        if actual_size != job.size:
            cause = f"size {actual_size} != manifest size {job.size}"
        elif digest is not None and digest != expected:
            cause = f"{job.entry.hash.algorithm} mismatch: expected {expected}, got {digest}"
        if cause:
            job.close_files()
            remove_quietly(job.work_path, journal.path)
            job.attempts += 1
            if job.attempts >= self.settings.attempts_per_file:
                raise PermanentError(f"{job.description}: {cause} (after {job.attempts} attempts)")
            self.reporter.retry(job.targets[0].final, job.attempts + 1, cause)
            return self._start_download(job, fresh=True)
        if self.settings.durable:
            os.fdatasync(job.fd)
        job.close_files()
        journal.remove()
        self._publish(job)
        self._complete(job, DOWNLOADED)

    def _publish(self, job: FileJob) -> None:
        if self.cache is not None:
            self.cache.publish(job.work_path, job.key)
            try:  # placed (and pinned) before the lock goes: eviction cannot take it between
                for t in job.targets:
                    self.cache.place(job.key, t.final, locked=True)
            finally:
                self._release_lock(job)
        else:
            first = job.targets[0].final
            self._makedirs(os.path.dirname(first))
            os.replace(job.work_path, first)
            for t in job.targets[1:]:
                link_or_copy(first, t.final)
        for t in job.targets:
            write_marker(t.marker_file, Marker.for_file(t.final, t.entry.hash.algorithm, t.entry.hash.digest))

    # --- endings -----------------------------------------------------------------------------
    def _release_lock(self, job: FileJob) -> None:
        if job.lock is not None:
            job.lock.release()
            job.lock = None

    def _leave(self, job: FileJob) -> None:
        with job.mutex:
            job.inflight -= 1
            idle = job.finished and job.inflight == 0
        if idle:
            self._cleanup(job)

    def _cleanup(self, job: FileJob) -> None:
        # Keep the partial file and its journal: the next run resumes from them.
        job.close_files()
        self._release_lock(job)

    def fail(self, job: FileJob, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, FetchError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # The room checked before the start (space.py) was taken by someone else meanwhile.
            message = (f"{os.strerror(exc.errno)} while writing {job.work_path or job.targets[0].final}"
                       f": free space there and re-run (completed ranges are kept)")
        with job.mutex:
            if job.finished:
                return
            job.finished = True
            job.error = message
            idle = job.inflight == 0
        if idle:
            self._cleanup(job)
        self._record(job, FAILED, message)

    def _complete(self, job: FileJob, status: str) -> None:
        with job.mutex:
            if job.finished:
                return
            job.finished = True
        self._record(job, status, None)

    def _record(self, job: FileJob, status: str, error: str | None) -> None:
        seconds = time.monotonic() - job.started if job.started else 0.0
        verification = job.verification or verification_label(
            job.entry.hash.algorithm,
            new_hasher(job.entry.hash.algorithm, 0, self.settings.pure_crc32c_limit))
        results = [
            FileResult(
                destination=t.final, source=job.description, size=t.entry.size, status=status,
                verification=verification, bytes_downloaded=job.bytes_downloaded if i == 0 else 0,
                seconds=round(seconds, 4), retries=job.retries + job.attempts,
                resumed_bytes=job.resumed_bytes if i == 0 else 0, error=error,
                hashed_from_disk=job.hasher.reread_bytes if job.hasher is not None and i == 0 else 0,
            )
            for i, t in enumerate(job.targets)
        ]
        with self._results_lock:
            self.results.extend(results)
        for r in results:
            self.reporter.file_done(r)
        self.scheduler.job_finished()
