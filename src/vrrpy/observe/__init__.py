"""Observability: Prometheus metrics of the running instances (see docs/observability.md).

* :mod:`vrrpy.observe.metrics`: the Prometheus text exposition format (0.0.4)
  from a :class:`~vrrpy.observe.metrics.Snapshot` of the daemon: keepalived
  exporter's names first (a drop-in for dashboards and alerts written for
  mehdy/keepalived-exporter), then vrrpy's own under ``vrrpy_``; a
  :class:`~vrrpy.observe.metrics.Histogram` the runtime can fill.
* :mod:`vrrpy.observe.server`: a read-only ``/metrics`` endpoint served from a
  time-shared thread of its own (stdlib :mod:`http.server`).
* :mod:`vrrpy.observe.page`: the status page the same endpoint serves at ``/``
  (a row per instance) and ``/instance/NAME`` (one instance, in full), HTML
  from the same snapshot, no script, refreshing itself.

Nothing here imports asyncio or touches the protocol loop: the runtime hands
in a ``snapshot()`` callable.
"""

from __future__ import annotations

from vrrpy.observe.metrics import (
    CONTENT_TYPE,
    CounterGuard,
    Histogram,
    Snapshot,
    escape_label_value,
    read_instances,
    render,
)
from vrrpy.observe.page import View, render_page
from vrrpy.observe.server import DEFAULT_ADDRESS, DEFAULT_PORT, MetricsServer

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_ADDRESS",
    "DEFAULT_PORT",
    "CounterGuard",
    "Histogram",
    "MetricsServer",
    "Snapshot",
    "View",
    "escape_label_value",
    "read_instances",
    "render",
    "render_page",
]
