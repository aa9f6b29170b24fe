"""How many streams run at once: start at the cores, add streams while they wait on the network.

Why adaptive: the right number of concurrent connections depends on what limits the transfer.
A distant CDN caps each TCP stream (tens of MB/s), so filling the link takes many streams; a
fast, near source (a node-local mirror, loopback, a 2-core pod on a 25 Gbit network) makes the
CPU the limit, where every extra stream only adds contention: measured on 2 cores over loopback,
one 2 GiB file, size only, median of 5 interleaved runs: 2 streams 895 MiB/s, 4 streams 719,
8 streams 502 (more threads competing to copy into one file's page cache and for the GIL).

So the pool keeps `workers` threads, but a StreamGate lets only `limit` of them take work at a
time. The limit starts at the cores this process may use (at least 2) and a Governor thread
raises it while two things hold over the last interval:

* the streams are mostly asleep: per thread, /proc/self/task/<tid>/schedstat gives the time on a
  CPU and the time runnable but waiting for one; streams that are neither wait on sockets;
* the CPUs are not saturated: a stream also sleeps on a local lock (one file's writes) or while
  a CPU-starved local server is slow to send, so sleeping alone does not prove the network is
  the limit. /proc/stat of the CPUs in our affinity mask must show idle time (steal time, a busy
  hypervisor, counts as busy; so does iowait: a disk that cannot keep up with the writes puts
  the writers to sleep too), and a cgroup CPU quota must not have throttled us.

A stream also sleeps in a direct-I/O write while the device takes it, and while it waits for room
in the hash window (ordered_hash.py); that time (a WaitClock) counts as busy here: more streams
would only queue on the same device or hash.

On a network-bound transfer both hold and the count climbs to `workers` in about a second;
CPU-bound, the count stays where it started. When the streams later keep the CPUs saturated
(busy threads, no idle time), the count steps back toward where it started: a thread over the
limit gives its slot back after its current range. Explicit worker counts (--workers,
PACK_TRANSFER_WORKERS) turn this off: that many streams.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

# Streams asleep more than this share of the time are waiting on the network: add streams...
GROW_BELOW_BUSY = 0.5
# ...if at least this share of our CPUs was idle meanwhile.
GROW_ABOVE_IDLE = 0.2
# Back toward the starting count when the streams keep the CPUs saturated (the gap between the
# thresholds keeps a steady transfer from see-sawing).
SHRINK_ABOVE_BUSY = 0.8
SHRINK_BELOW_IDLE = 0.05
GROWTH = 1.5
INTERVAL = 0.2


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """cgroup v2 cpu.max or v1 cfs quota, in cores; None when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as fh:
            quota_us = int(fh.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
            period_us = int(fh.read())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def initial_streams(workers: int, cores: int | None = None) -> int:
    return max(1, min(workers, max(2, cores or available_cores())))


def next_limit(limit: int, floor: int, ceiling: int, busy: float | None, backlog: bool,
               idle: float | None) -> int:
    """The stream limit for the next interval, between floor (the start) and ceiling.

    busy: the streams' threads' time on or waiting for a CPU, per stream slot (0..1); idle: the
    share of our CPUs' time that was idle (0 when a quota throttled us); None when unknown.
    Grows while work is queued, the streams mostly sleep and the CPUs have room; shrinks while
    the streams are busy and the CPUs saturated (more streams than the CPUs can serve)."""
    if busy is None or idle is None:
        return limit
    if backlog and limit < ceiling and busy < GROW_BELOW_BUSY and idle >= GROW_ABOVE_IDLE:
        return min(ceiling, max(limit + 1, int(limit * GROWTH)))
    if limit > floor and busy >= SHRINK_ABOVE_BUSY and idle < SHRINK_BELOW_IDLE:
        return max(floor, min(limit - 1, int(limit / GROWTH)))
    return limit


class StreamGate:
    """A counting semaphore whose limit can change while threads wait on it."""

    def __init__(self, limit: int):
        self._cond = threading.Condition()
        self.limit = limit
        self.active = 0
        self.peak_limit = limit

    def enter(self, timeout: float | None = None) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: self.active < self.limit, timeout):
                return False
            self.active += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()

    def open(self) -> None:
        """Let every thread through (shutdown: parked workers must reach their stop signal)."""
        with self._cond:
            self.limit = 1 << 30
            self._cond.notify_all()

    def over_limit(self) -> bool:
        """The limit fell below the slots in use (a holder should leave)."""
        with self._cond:
            return self.active > self.limit

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self.limit = limit
            self.peak_limit = max(self.peak_limit, limit)
            self._cond.notify_all()


def thread_times(tid: int) -> tuple[int, int] | None:
    """(ns on a CPU, ns runnable but waiting for one) of a thread of this process."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as fh:
            on_cpu, waiting, _ = fh.read().split()
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return None


class CpuIdle:
    """Idle share of the CPUs this process may use, between successive calls."""

    def __init__(self) -> None:
        try:
            self._cpus: set[str] | None = {f"cpu{n}" for n in os.sched_getaffinity(0)}
        except (AttributeError, OSError):
            self._cpus = None
        self._last = self._read()

    def _read(self) -> tuple[int, int, int] | None:
        """(idle ticks, all ticks, throttled ns) now; None without /proc/stat."""
        idle = total = 0
        try:
            with open("/proc/stat") as fh:
                for line in fh:
                    name, _, rest = line.partition(" ")
                    if not name.startswith("cpu") or name == "cpu":
                        continue
                    if self._cpus is not None and name not in self._cpus:
                        continue
                    # user nice system idle iowait irq softirq steal (guest time is in user)
                    ticks = [int(x) for x in rest.split()[:8]]
                    idle += ticks[3]  # not iowait: writers throttled on a slow disk show there
                    total += sum(ticks)
        except (OSError, ValueError, IndexError):
            return None
        return idle, total, _throttled_ns()

    def sample(self) -> float | None:
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        if now[2] > last[2]:
            return 0.0  # the quota ran out meanwhile: the CPU is the limit, whatever the host says
        return (now[0] - last[0]) / (now[1] - last[1])


def _throttled_ns() -> int:
    """Time a cgroup CPU quota has held this container back (0 when none or unknown)."""
    for path, key, scale in (("/sys/fs/cgroup/cpu.stat", "throttled_usec", 1000),
                             ("/sys/fs/cgroup/cpu/cpu.stat", "throttled_time", 1)):
        try:
            with open(path) as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value) * scale
        except (OSError, ValueError):
            continue
    return 0


class WaitClock:
    """Time the streams spend asleep on local work, not on the network (see the module text)."""

    def __init__(self) -> None:
        self._ns = 0
        self._lock = threading.Lock()

    def add(self, ns: int) -> None:
        with self._lock:
            self._ns += ns

    def total(self) -> int:
        return self._ns


class Governor:
    """Samples the workers' scheduler statistics every INTERVAL and raises the gate's limit."""

    def __init__(self, gate: StreamGate, ceiling: int, tids: Callable[[], list[int]],
                 backlog: Callable[[], bool], stop: threading.Event,
                 local_wait: WaitClock | None = None):
        self._gate, self._ceiling, self._tids = gate, ceiling, tids
        self._floor = gate.limit
        self._backlog, self._stop = backlog, stop
        self._local_wait = local_wait or WaitClock()

    def _sample(self) -> dict[int, int]:
        busy = {}
        for tid in self._tids():
            times = thread_times(tid)
            if times is not None:  # None: the thread has exited
                busy[tid] = times[0] + times[1]
        return busy

    def run(self) -> None:
        if thread_times(threading.get_native_id()) is None:
            return  # no schedstat (not Linux, or CONFIG_SCHED_INFO off): keep the limit
        cpu = CpuIdle()
        last, last_at = self._sample(), time.monotonic()
        waited = self._local_wait.total()
        while not self._stop.wait(INTERVAL):
            now, at = self._sample(), time.monotonic()
            # Threads parked at the gate sleep and add nothing: the sum over all workers is the
            # slot holders' load. A thread born meanwhile counts from zero.
            busy_ns = sum(ns - last.get(tid, 0) for tid, ns in now.items())
            waited, before = self._local_wait.total(), waited
            busy_ns += waited - before
            elapsed_ns = (at - last_at) * 1e9
            per_slot = busy_ns / (elapsed_ns * self._gate.limit) if elapsed_ns > 0 else None
            idle = cpu.sample()
            limit = next_limit(self._gate.limit, self._floor, self._ceiling, per_slot,
                               self._backlog(), idle)
            if limit != self._gate.limit:
                self._gate.set_limit(limit)
            last, last_at = now, at
