"""vrrpyd's ``[global] metrics_listen``: the Prometheus endpoint over the live runtime.

What the endpoint reads and how it keeps off the adverts' way is
:mod:`vrrpy.observe.server`'s business; this module only builds the
:class:`~vrrpy.observe.metrics.Snapshot` from the daemon's parts.

The serving thread is one of the runtime's workers
(:func:`vrrpy.runtime.realtime.worker_initializer`: real-time one priority
below the loop when the loop is real-time). A time-shared thread was measured
first: on a loaded machine the kernel preempts it while it holds the GIL, and
the real-time loop then waits for it (up to 25 ms per scrape of 2,000
instances under ``stress-ng --cpu 8``). A real-time thread is never preempted
by ordinary processes, so it gives the GIL back within the interpreter's
switch interval; it naps between metric families so that a long render (or a
client that keeps asking) neither trips ``RLIMIT_RTTIME`` nor holds a CPU
from everything else.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import vrrpy
from vrrpy.observe.kernel import NetlinkDumpError, read_addresses
from vrrpy.observe.metrics import Snapshot, mark_installed, read_instances
from vrrpy.observe.server import MetricsServer
from vrrpy.runtime import realtime

if TYPE_CHECKING:
    from vrrpy.runtime.gate import LoopGate
    from vrrpy.runtime.runtime import Runtime

__all__ = ["live_instances", "start_metrics"]

logger = logging.getLogger("vrrpyd")


def live_instances(runtime: Runtime, pause: Callable[[], None]) -> dict[str, dict[str, Any]]:
    """Every instance's status read live from the calling thread (never the loop's), with
    ``addresses_installed`` from the kernel when its address table could be read."""
    instances = read_instances(runtime.instances, pause=pause)
    try:
        mark_installed(instances, read_addresses(pause=pause), pause)
    except NetlinkDumpError as exc:
        logger.debug("no address dump: %s", exc)  # then the page and vrrpctl say "unknown"
    return instances


def start_metrics(
    listen: tuple[str, int],
    runtime: Runtime,
    tracking: Callable[[Callable[[], None]], Mapping[str, Any]],
    state_file_errors: Callable[[], int],
    gate: LoopGate | None = None,
) -> MetricsServer:
    """Bind ``listen`` and serve ``/metrics`` from a worker thread (``OSError``: not bound).

    ``tracking(pause)`` and ``state_file_errors`` are read at each scrape, from the
    serving thread (``tracking`` calls ``pause`` every few instances): they must
    only read (a dict changed meanwhile raises ``RuntimeError``, and the snapshot is
    taken again).
    """
    started = time.time()
    rt = realtime.current()
    pid = os.getpid()
    server: MetricsServer

    def snapshot() -> Snapshot:
        return Snapshot(
            instances=live_instances(runtime, server.pause),
            tracking=tracking(server.pause),
            sync_groups=runtime.group_status(),
            realtime=rt.status() if rt is not None else None,
            state_file_errors=state_file_errors(),
            pid=pid,
            start_time=started,
            version=vrrpy.__version__,
        )

    host, port = listen
    server = MetricsServer(snapshot, host, port, thread_init=realtime.worker_initializer, gate=gate)
    server.start()
    return server
