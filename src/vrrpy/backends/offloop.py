"""Run a backend on an event loop of its own, in a thread: Python that burns CPU
between two ``await`` cannot hold the protocol loop.

Why. The pipeline runs every backend as a task on the protocol's event loop,
so a backend that computes for 50 ms without awaiting (a checksum over a
file, a template rendered, a slow library called directly) holds that loop
for 50 ms: ``bench/backend_bench.py`` measured +42.7 ms on a 10 ms Master's
advert gaps and a flap. A task cannot be preempted; a thread can. Wrapped in
:class:`OffLoop`, the backend's coroutines run on a private loop in a
thread of their own, and the protocol loop only awaits their result. The GIL
is still shared: CPython makes a CPU-bound thread give it up within the
switch interval whenever the loop's thread asks (:mod:`vrrpy.runtime.realtime`),
but only if that thread is running. A time-sharing thread preempted by some
other process while it holds the GIL keeps the real-time loop waiting
(priority inversion): measured with ``bench/backend_bench.py``, a
``SCHED_OTHER`` backend thread burning 50 ms per transition stretched one
advert gap to 18.7 ms. So the thread is made a runtime worker
(:func:`~vrrpy.runtime.realtime.worker_initializer`): real-time one priority
below the loop when the loop is real-time, like the runtime's own workers
(+0.1 ms in the same bench), and under the same CPU-time bound: a backend
that computes for longer than half of ``rlimit_rttime`` (0.5 s by default)
without ever waiting gets the daemon's real-time threads dropped to
time-sharing for a while (logged), so a runaway cannot take a core for ever.
Longer computations belong in a process pool.

vrrpyd wraps every ``type = "python"`` backend this way unless its table says
``thread = false`` (for a backend that shares asyncio objects with the
protocol loop). Cancellation crosses over: a call cancelled at its timeout or
by a newer transition is cancelled on the backend's loop too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from vrrpy.backends.base import Backend, TransitionEvent, implements

__all__ = ["OffLoop"]


class OffLoop(Backend):
    """``backend``, with every call run on its own event loop in a thread (see the module).

    ``name``, ``timeout``, ``fault_on_failure`` and ``check_interval`` are read
    from ``backend`` once; the pipeline reads them from the wrapper.
    """

    def __init__(self, backend: Backend) -> None:
        self.wrapped = backend
        self.name = getattr(backend, "name", type(backend).__name__)
        self.timeout = float(getattr(backend, "timeout", 30.0))
        self.fault_on_failure = bool(getattr(backend, "fault_on_failure", False))
        self.check_interval = float(getattr(backend, "check_interval", 0.0) or 0.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        for side in ("master_rx_lower_pri", "priority_changed"):
            method = getattr(backend, side, None)
            if method is not None:
                setattr(self, side, self._forward(method))

    def _forward(
        self, method: Callable[[TransitionEvent], Awaitable[None]]
    ) -> Callable[[TransitionEvent], Awaitable[None]]:
        async def call(event: TransitionEvent) -> None:
            await self._run(method(event))

        return call

    def _backend_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    from vrrpy.runtime.realtime import worker_initializer

                    worker_initializer()
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(
                    target=serve, name=f"vrrpy-backend-{self.name}", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _run(self, coroutine: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self._backend_loop())
        # Cancelling the awaiting task cancels the wrapped future, which cancels the
        # task on the backend's loop.
        return await asyncio.wrap_future(future)

    async def prepare(self, event: TransitionEvent) -> None:
        if implements(self.wrapped, "prepare"):
            await self._run(self.wrapped.prepare(event))

    async def transition(self, event: TransitionEvent) -> None:
        await self._run(self.wrapped.transition(event))

    async def check(self) -> str | None:
        result: str | None = await self._run(self.wrapped.check())
        return result

    async def close(self) -> None:
        try:
            await self._run(self.wrapped.close())
        finally:
            with self._lock:
                loop, thread = self._loop, self._thread
                self._loop = self._thread = None
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                await asyncio.to_thread(thread.join, 5.0)
                if not thread.is_alive():
                    loop.close()

    def __repr__(self) -> str:
        return f"OffLoop({self.wrapped!r})"


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
