"""The stream governor: start at the cores, add streams only while they wait on the network."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time

from packager.runtime.transfer import TransferSettings
from packager.runtime.transfer.engine import Priority
from packager.runtime.transfer.governor import (
    Governor,
    WaitClock,
    StreamGate,
    initial_streams,
    next_limit,
    thread_times,
)

from .conftest import FAST, KiB, MiB, payload
from .test_transfer_http import run


def test_next_limit_grows_only_with_backlog_sleeping_streams_and_idle_cpus():
    def grown(limit, busy=0.1, backlog=True, idle=0.5):
        return next_limit(limit, 2, 8, busy, backlog, idle)

    assert grown(2) == 3 and grown(4) == 6
    assert grown(6, busy=0.0) == 8 and grown(8, busy=0.0) == 8  # capped at the ceiling
    # CPU-bound: more streams only contend, whether our threads run or sleep on a local lock.
    assert grown(2, busy=0.9) == 2 and grown(2, idle=0.05) == 2
    assert grown(2, backlog=False) == 2  # nothing waits for a slot
    assert grown(2, busy=None) == 2 and grown(2, idle=None) == 2  # no signal: keep the limit


def test_next_limit_steps_back_while_busy_streams_saturate_the_cpus():
    assert next_limit(8, 2, 8, busy=0.9, backlog=True, idle=0.0) == 5
    assert next_limit(3, 2, 8, busy=0.9, backlog=True, idle=0.0) == 2
    assert next_limit(2, 2, 8, busy=1.0, backlog=True, idle=0.0) == 2  # never below the start
    assert next_limit(8, 2, 8, busy=0.9, backlog=True, idle=0.1) == 8  # between the thresholds
    assert next_limit(8, 2, 8, busy=0.6, backlog=True, idle=0.0) == 8


def test_settings_start_at_the_cores_unless_a_count_is_given():
    auto = TransferSettings().resolved({})
    assert auto.streams == initial_streams(auto.workers) and 2 <= auto.streams <= auto.workers
    assert initial_streams(8, cores=1) == 2 and initial_streams(8, cores=4) == 4
    assert initial_streams(8, cores=32) == 8 and initial_streams(1, cores=4) == 1
    # An explicit count, from the caller or the environment, is exactly that many streams.
    assert TransferSettings().resolved({}, workers=6).streams == 6
    assert TransferSettings().resolved({"PACK_TRANSFER_WORKERS": "5"}).streams == 5


def hashing(stop):  # hashlib releases the GIL: a thread busy on a CPU
    block = b"x" * MiB
    while not stop.is_set():
        hashlib.sha256(block).digest()


def waiting(stop):  # like a stream blocked on a slow socket
    while not stop.wait(0.01):
        pass


def _governed(worker, burners: int = 0, streams: int = 2, clock: WaitClock | None = None) -> int:
    """Run a governor for 1 s over `streams` threads doing `worker`, beside `burners` other
    threads keeping CPUs busy; the gate starts at `streams`, never below 2, ceiling 8; returns
    the limit it reached."""
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(stop,)) for _ in range(streams)]
    others = [threading.Thread(target=hashing, args=(stop,)) for _ in range(burners)]
    for t in threads + others:
        t.start()
    gate = StreamGate(2)
    governor = Governor(gate, 8, lambda: [t.native_id for t in threads], lambda: True, stop, clock)
    gate.set_limit(streams)  # as if it had grown there earlier
    runner = threading.Thread(target=governor.run)
    runner.start()
    time.sleep(1.0)
    stop.set()
    for t in threads + others + [runner]:
        t.join()
    return gate.limit


def test_governor_reads_real_thread_and_cpu_load():
    assert thread_times(threading.get_native_id()) is not None
    assert _governed(hashing) == 2  # the streams themselves keep the CPUs busy
    assert _governed(waiting) == 8  # streams asleep, CPUs idle: the network is the limit
    # Streams asleep but every CPU busy (a local server starved of CPU, a lock): no growth.
    assert _governed(waiting, burners=len(os.sched_getaffinity(0))) == 2
    # Eight busy streams and every CPU busy: back down to where it started.
    assert _governed(hashing, burners=len(os.sched_getaffinity(0)), streams=8) == 2


def test_streams_asleep_on_the_disk_do_not_count_as_waiting_on_the_network():
    """A direct-I/O write or a wait for the hash window sleeps with the CPUs idle, as a socket
    wait does; the streams report that time, and the count stays where it started."""
    clock = WaitClock()

    def writing(stop):  # asleep in a write the device takes 10 ms to complete
        while not stop.is_set():
            start = time.monotonic_ns()
            time.sleep(0.01)
            clock.add(time.monotonic_ns() - start)

    assert _governed(writing, clock=clock) == 2
    assert _governed(waiting, clock=clock) == 8  # the same sleep, unreported: the network


def test_workers_give_slots_back_when_the_limit_drops():
    """Between two items a worker over the limit returns its slot; the rest carry on."""
    from types import SimpleNamespace

    from packager.runtime.transfer.engine import Scheduler

    settings = TransferSettings(workers=6, streams=6).resolved({})
    scheduler = Scheduler(settings, reporter=None, cache=None)
    seen: list[int] = []

    def prepare(job):
        if job.index == 30:
            scheduler._gate.set_limit(2)  # what the governor does
        seen.append(scheduler._gate.active)
        time.sleep(0.005)
        scheduler.job_finished()

    scheduler.run([SimpleNamespace(index=i) for i in range(120)], prepare)
    assert max(seen[:30]) > 2  # six streams ran side by side at first...
    assert max(seen[60:]) <= 2  # ...and two once the limit dropped


def test_throttled_source_gets_more_streams(hub, tmp_path):
    """Each response is throttled (a CDN's per-connection cap): the two starting streams sleep
    on their sockets, so the governor adds streams up to the ceiling."""
    hub.add("big.bin", payload(8 * MiB, 3))
    hub.server.faults.rate = 1 * MiB
    settings = dataclasses.replace(FAST, workers=8, streams=2)
    result = run(hub, tmp_path / "out", settings=settings)
    hub.assert_placed(str(tmp_path / "out"))
    assert result.streams == 8
    assert hub.bytes_for("big.bin") == 8 * MiB


def test_fixed_count_never_changes(hub, tmp_path):
    hub.add("big.bin", payload(4 * MiB, 4))
    hub.server.faults.rate = 2 * MiB
    result = run(hub, tmp_path / "out", settings=dataclasses.replace(FAST, workers=3))
    assert result.ok and result.streams == 3


def test_boost_with_a_governed_pool_delivers_the_file(hub, tmp_path):
    """Niced workers hold the slots; after boost() the normal-priority ones take them over."""
    hub.add("big.bin", payload(3 * MiB, 5))
    hub.server.faults.rate = 512 * KiB
    priority = Priority()
    settings = dataclasses.replace(FAST, workers=6, streams=2, worker_nice=5)
    outcome: dict = {}
    fetcher = threading.Thread(target=lambda: outcome.update(result=run(
        hub, tmp_path / "out", settings=settings, priority=priority)))
    fetcher.start()
    time.sleep(0.6)
    hub.server.faults.rate = None
    priority.boost()
    fetcher.join(30)
    assert not fetcher.is_alive() and outcome["result"].ok
    hub.assert_placed(str(tmp_path / "out"))
    assert hub.bytes_for("big.bin") < 3 * MiB + 6 * FAST.buffer_size * 4
