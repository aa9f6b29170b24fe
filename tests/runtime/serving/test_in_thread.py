"""pipeline.in_thread, the hop of a sync model method to a pool thread (run_in_executor without its
future chaining): the outcome reaches the loop, the request's context goes with it, a failure
leaves no reference cycle behind (the model's locals are freed with the exception, the GC off),
and a call cancelled before a thread took it never runs."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

from packager.runtime.serving.pipeline import in_thread

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("test_request_id", default=None)


class Held:
    """Stands for what a model's frame holds (a batch, a tensor)."""


def test_the_result_and_the_context_reach_the_thread_and_back():
    def work(x: int) -> tuple[int, str | None, bool]:
        return x * 2, request_id.get(), threading.current_thread() is threading.main_thread()

    async def main() -> tuple[int, str | None, bool]:
        request_id.set("req-7")
        with ThreadPoolExecutor(1) as pool:
            return await in_thread(asyncio.get_running_loop(), pool, contextvars.copy_context(), work, (21,))

    assert asyncio.run(main()) == (42, "req-7", False)


def test_a_failure_is_raised_and_leaves_no_cycle():
    held: list[weakref.ref[Held]] = []

    def failing() -> None:
        big = Held()
        held.append(weakref.ref(big))
        raise ValueError("the model failed")

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(ValueError, match="the model failed"):
                await in_thread(asyncio.get_running_loop(), pool, contextvars.copy_context(), failing, ())
        # The pool has shut down: its worker let go of the work item.

    enabled = gc.isenabled()
    gc.disable()
    try:
        asyncio.run(main())
        assert held and held[0]() is None, "the failing frame's locals are kept alive by a reference cycle"
    finally:
        if enabled:
            gc.enable()


def test_a_call_cancelled_before_a_thread_took_it_does_not_run():
    ran: list[str] = []
    gate = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1) as pool:
            busy = in_thread(loop, pool, contextvars.copy_context(), gate.wait, (10,))
            queued = in_thread(loop, pool, contextvars.copy_context(), ran.append, ("queued",))
            queued.cancel()  # the only thread is busy: it has not taken this one yet
            gate.set()
            assert await busy is True
        assert queued.cancelled()

    asyncio.run(main())
    assert ran == []
