"""A read-only ``/metrics`` endpoint and status page, served from a thread of its own.

vrrpyd wires it like this (``runtime.instances``: name to
:class:`~vrrpy.runtime.instance.InstanceRunner`)::

    def snapshot() -> Snapshot:          # runs in the metrics thread
        return Snapshot(
            instances=read_instances(runtime.instances),   # live: no drain, no advert
            tracking=tracking.status() if tracking else {},
            sync_groups=runtime.group_status(),
            realtime=rt.status() if rt else None,
            state_file_errors=state.errors,
            pid=os.getpid(), start_time=started, version=vrrpy.__version__,
        )

    server = MetricsServer(snapshot)     # 127.0.0.1:9165, keepalived-exporter's port
    server.start()                       # raises OSError if the address is taken
    ...
    server.stop()

``snapshot()`` must return a new :class:`~vrrpy.observe.metrics.Snapshot`
each time, and must not block: the server consumes it (frees it a piece at a
time after the render) and the garbage collector is held off while it runs.

How the snapshot is taken: the thread reads the live objects
=============================================================

Two ways were measured with 2,000 instances (real ``InstanceRunner`` objects
with real cores, fake host parts; Python 3.11, the 2-core VM of
docs/vrrpyd.md), a "loop" thread at ``SCHED_RR`` 10 waking every 1 ms and
recording how late it got the GIL back, 20 s a row, three runs:

* **The loop hands over a copy** (``status()`` of every runner, called on the
  loop): the loop is blocked 23 to 36 ms in one stretch at every scrape,
  loaded or not, and a scrape waits for the loop's turn.
* **The thread reads the live objects itself** (:func:`read_instances`;
  chosen): the loop never stops for a scrape and a scrape never waits for
  it. Nothing is drained (``Runtime.status()`` would read the sockets and
  process queued adverts: never call it from here); a Backup's counters are
  as fresh as its bulk queue (read at least once a second). A dict the loop
  changes while it is read raises ``RuntimeError``, and that read is retried.

One scrape of 2,000 instances cost 118 to 127 ms of CPU in this thread
when first measured, about 60 us per instance: reading the statuses 29 ms
(``status()`` itself 11 us each), rendering 87 ms (the
:class:`~vrrpy.observe.metrics.CounterGuard` included, ~20 ms of it),
encoding 1.8 ms; 5.8 MB of text, 75,000 lines; gzip at level 1 (when the
scraper asks) 0.5 MB in 17 ms, with the GIL released. Since then every
instance has two histograms and each virtual address the kernel's word:
the render of 2,000 Backups is about 195 ms and 8.5 MB in 141 pieces of at
most 1,000 samples (the largest 113 kB), empty histograms left out. At most
one render per ``min_interval`` (1 s) whoever asks.

How long the GIL is held in one stretch, the scrapes back to back (150 to
175 per 20 s), on an idle machine: the loop's wake-ups were a median 0.23 ms
late (0.01 ms without scrapes: a waiting thread asks for the GIL after
:data:`vrrpy.runtime.realtime.SWITCH_INTERVAL`, 0.2 ms), p99 0.47 ms,
p99.9 0.75 ms, worst 1.7 ms; 7 to 14 of 20,000 over 1 ms. Three things got
it there from a worst of 75 ms:

* the garbage collector: a collection runs in one stretch in whichever thread
  allocates, and walked the scrape's ~20,000 temporary containers (8 to 10 ms,
  once 36 ms). While a scrape runs, generation 0's threshold is 0 (no
  automatic collection, in any thread); everything the scrape made is freed
  by reference counting before it is restored. The guard keeps only strings
  and numbers, which the collector never walks;
* freeing 2,000 statuses at once is one C call of 2 ms: the snapshot is
  freed one status at a time;
* the text stays in pieces: joining it into one string is another C call.

Under ``stress-ng --cpu 8`` a time-shared thread is preempted while it holds
the GIL, and the real-time loop waits for it (the priority inversion of
docs/vrrpyd.md): each scrape made 1 to 3 of the loop's wake-ups over 5 ms
late, the worst 16 to 25 ms. Yielding the CPU between metric families did
not change that (0.9 to 2.5 per scrape). The copy on the loop has no
inversion but its 23 to 36 ms stall at every scrape is larger, and is paid on
an idle machine too. A 2,000-instance daemon scraped every 15 s therefore
risks one late wake-up of up to ~25 ms per scrape, only while the CPUs are
overloaded; fewer instances cost proportionally less.

The status page (:mod:`vrrpy.observe.page`: ``/``, ``/?show=...``,
``/instance/NAME``) is served by the same thread under the same rules: its
own snapshot from the same ``snapshot()``, no collection while it renders,
pieces with a ``pause`` between them, at most one render per view per
``min_interval`` (the :data:`PAGE_VIEWS` most recent views are kept).

The loop's gate
===============

All of the above kept the GIL handed back within a switch interval, and it
was not enough at 2,000 instances: the GIL is released around every system
call, so while this thread rendered, each advert the loop sent gave the GIL
to it, and the loop waited a switch interval to get it back (0.35 ms per
advert instead of 0.03, a loop pass of a few dozen adverts up to 96 ms;
``perf trace`` of the loop thread). A 10 ms Master among 2,000 instances,
scraped every second, had gaps of 36 to 60 ms and its Backup took over. Now
vrrpyd's loop holds a gate while it works (:class:`vrrpy.runtime.gate.LoopGate`)
and this thread waits there, without the GIL, every few dozen samples, every
4 instances read, every 32 addresses of the kernel's dump (:meth:`pause`);
what a render lets go (the counter guard's 75,000 series, a family's lines,
the histograms) is freed a piece at a time, since each dropped at once was one
C call of 2 to 8 ms. The same Master's largest gap: 10.27 ms quiet, 10.47 ms
scraped (bench/scrape_bench.py; figures in bench/README.md).

Which policy the thread has is the caller's choice (``thread_init``).
Without one it is time-shared: started from the loop's thread, whose
``SCHED_RESET_ON_FORK`` starts it time-shared, and it drops any real-time
policy it was started with. vrrpyd passes the runtime's
``worker_initializer`` (real-time one below the loop: a time-shared thread
preempted while it holds the GIL holds up the loop, as measured above), and
its loop's gate (``gate``).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Final

from vrrpy.observe.metrics import (
    CONTENT_TYPE,
    CounterGuard,
    Snapshot,
    format_value,
    render_down,
    render_parts,
)
from vrrpy.observe.page import CONTENT_TYPE as PAGE_CONTENT_TYPE
from vrrpy.observe.page import HEADERS as PAGE_HEADERS
from vrrpy.observe.page import View, encode_parts, parse_target, render_page, render_unavailable
from vrrpy.observe.threads import Pacer, is_real_time, name_thread, paced

if TYPE_CHECKING:
    from vrrpy.runtime.gate import LoopGate

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "MetricsServer"]

logger = logging.getLogger("vrrpy.observe")

DEFAULT_ADDRESS: Final = "127.0.0.1"
"""Loopback only: expose it further behind a reverse proxy that authenticates
(docs/observability.md)."""

DEFAULT_PORT: Final = 9165
"""keepalived-exporter's port (``--web.listen-address :9165``): a scrape job written for it
finds vrrpyd where keepalived-exporter was."""

MIN_INTERVAL: Final = 1.0
"""Seconds a rendered exposition is served again before a new one is rendered: two
Prometheus servers of an HA pair scraping together cost one render."""

ERROR_LOG_INTERVAL: Final = 60.0

THREAD_NAME: Final = "vrrpyd-metrics"

PAGE_VIEWS: Final = 8
"""Rendered views of the status page kept for ``min_interval``: the summary and a few
instances' pages; a client asking for ever new names cannot make it hold more."""


def _time_sharing() -> None:
    """Make the calling thread ``SCHED_OTHER`` if it is not (see the module docstring)."""
    try:
        if is_real_time():
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError as exc:  # pragma: no cover - dropping real time is always allowed
        logger.warning("metrics thread could not leave real-time scheduling: %s", exc)


def _release(snapshot: Snapshot, pause: Callable[[], None]) -> None:
    """Free what ``snapshot()`` handed over a piece at a time.

    The last reference to 2,000 instance statuses, dropped at once, frees
    some 60,000 objects in one C call: 2 ms holding the GIL. Popped one by
    one, each status is freed by itself and the interpreter may switch
    threads between two of them.
    """
    for mapping in (snapshot.instances, snapshot.tracking):
        if type(mapping) is dict:
            n = 0
            while mapping:
                mapping.popitem()
                n += 1
                if n % 32 == 0:
                    pause()


class _Body:
    """One rendered exposition: its chunks, plain and (on first demand) gzip-compressed."""

    __slots__ = ("_gzip", "chunks", "length", "made")

    def __init__(self, chunks: list[bytes], made: float) -> None:
        self.chunks = chunks
        self.length = sum(len(c) for c in chunks)
        self.made = made
        self._gzip: list[bytes] | None = None

    def gzip(self) -> list[bytes]:
        if self._gzip is None:
            # zlib releases the GIL while it deflates each chunk.
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)
            out = [packer.compress(chunk) for chunk in self.chunks]
            out.append(packer.flush())
            self._gzip = [c for c in out if c]
        return self._gzip


class MetricsServer:
    """Serves ``snapshot()`` rendered as Prometheus text at ``path`` on ``host``:``port``,
    and as the status page (:mod:`vrrpy.observe.page`) at ``/`` and ``/instance/NAME``.

    One thread (``vrrpyd-metrics``, time-shared) accepts and answers one
    request at a time: a scrape renders at most once per ``min_interval``
    seconds whoever asks, and a slow client holds the thread at most
    ``timeout`` seconds per read or write. ``snapshot()`` runs in that thread;
    a ``RuntimeError`` from it (a dict the event loop changed while it was
    read) is retried up to ``attempts`` times; any other exception, or the
    last ``RuntimeError``, answers ``keepalived_up 0`` and is logged (at most
    one line a minute). Only GET and HEAD are answered.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        host: str = DEFAULT_ADDRESS,
        port: int = DEFAULT_PORT,
        *,
        path: str = "/metrics",
        min_interval: float = MIN_INTERVAL,
        attempts: int = 5,
        timeout: float = 10.0,
        thread_init: Callable[[], None] | None = None,
        gate: LoopGate | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.thread_init = thread_init
        """Called first in the serving thread (vrrpyd: the runtime's
        ``worker_initializer``, real-time one below the loop); None: time-sharing."""
        self.pacer = Pacer(gate)
        """Called through :meth:`pause` all along a render: waits at the loop's ``gate``
        (vrrpyd's: :class:`vrrpy.runtime.gate.LoopGate`) and naps if real-time."""
        self.host = host
        self.port = port
        self.path = path
        self.min_interval = min_interval
        self.attempts = attempts
        self.timeout = timeout
        self.guard = CounterGuard()
        self.renders = 0
        """Expositions rendered (a scrape within ``min_interval`` of the last renders none)."""
        self.retries = 0
        """``snapshot()`` calls retried after a ``RuntimeError``."""
        self.errors = 0
        """Scrapes answered ``keepalived_up 0`` because ``snapshot()`` failed."""
        self.last_render_seconds = math.nan
        """Thread CPU time of the last render (snapshot and text), in seconds."""
        self.page_renders = 0
        """Status page views rendered (one view asked again within ``min_interval``: none)."""
        self.page_errors = 0
        """Status page views answered 503 because ``snapshot()`` failed."""
        self._body: _Body | None = None
        self._pages: dict[View, tuple[int, _Body]] = {}
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._last_logged = -math.inf
        self._unlogged = 0

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port the kernel chose when ``port`` was 0)."""
        if self._httpd is None:
            return self.host, self.port
        bound = self._httpd.server_address
        return str(bound[0]), int(bound[1])

    def start(self) -> None:
        """Bind and listen here (an ``OSError`` says why not), then serve from a thread."""
        if self._httpd is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = _HTTPServer((self.host, self.port), _Handler, family)
        httpd.metrics = self
        self._httpd = httpd
        self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        name_thread(THREAD_NAME)
        if self.thread_init is None:
            _time_sharing()
        else:
            self.thread_init()
        self.pacer.real_time = is_real_time()
        assert self._httpd is not None
        self._httpd.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        """Stop serving and close the socket (waits for a request in progress)."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def real_time(self) -> bool:
        """Whether the serving thread started real-time (it then naps: :meth:`pause`)."""
        return self.pacer.real_time

    def pause(self) -> None:
        """Keep off the event loop's way for a moment (:class:`~vrrpy.observe.threads.Pacer`):
        wait while the loop works, and if real-time, nap as long as it worked.

        Called every few dozen samples of a render, between pieces, every few
        instances read, and after each request. With naps alone (no gate),
        the Master's 10 ms adverts had 36 to 60 ms gaps while 2,000 instances
        were scraped every second (bench/scrape_bench.py): each of the loop's
        system calls handed the GIL to this thread for a switch interval.
        """
        self.pacer()

    # -------------------------------------------------------------- rendering

    def scrape(self) -> _Body:
        """The exposition to answer with now: the last one if it is younger than
        ``min_interval``, else a new one."""
        with self._lock:
            body = self._body
            now = time.monotonic()
            if body is not None and now - body.made < self.min_interval:
                return body
            started = time.thread_time()
            # No collection while the scrape's temporaries live (see the module docstring):
            # they are freed by reference counting, a piece at a time, before this ends.
            threshold = gc.get_threshold()
            gc.set_threshold(0, *threshold[1:])
            try:
                parts = self._render()
            finally:
                gc.set_threshold(*threshold)
            self.last_render_seconds = time.thread_time() - started
            self.renders += 1
            parts.append(self._own())
            # Aged from the start of the render: a scraper asking every second gets a new
            # one each time, not every other time because the last took a while.
            body = self._body = _Body([p.encode("utf-8") for p in paced(parts, self.pause, 8)], now)
            return body

    def _render(self) -> list[str]:
        for attempt in range(self.attempts):
            try:
                snapshot = self.snapshot()
                parts = render_parts(snapshot, self.guard, self.pause)
                _release(snapshot, self.pause)
                return parts
            except RuntimeError as exc:
                if attempt < self.attempts - 1:
                    self.retries += 1
                    continue
                self._failed(exc)
            except Exception as exc:
                self._failed(exc)
                break
        return [render_down()]

    def page(self, view: View) -> tuple[int, _Body]:
        """(HTTP status, body) of the status page's ``view``: the one rendered less than
        ``min_interval`` ago, else a new one, from a snapshot of its own, under the rules
        of :meth:`scrape` (no collection while it renders, pieces, ``pause``)."""
        with self._lock:
            now = time.monotonic()
            cached = self._pages.get(view)
            if cached is not None and now - cached[1].made < self.min_interval:
                return cached
            threshold = gc.get_threshold()
            gc.set_threshold(0, *threshold[1:])
            try:
                code, parts = self._render_page(view)
            finally:
                gc.set_threshold(*threshold)
            self.page_renders += 1
            answer = code, _Body(encode_parts(paced(parts, self.pause, 8)), now)
            del parts
            pages = self._pages
            pages.pop(view, None)
            for old in [v for v, (_, b) in pages.items() if now - b.made >= self.min_interval]:
                del pages[old]
            while len(pages) >= PAGE_VIEWS:
                del pages[next(iter(pages))]
            pages[view] = answer
            return answer

    def _render_page(self, view: View) -> tuple[int, list[str]]:
        for attempt in range(self.attempts):
            try:
                snapshot = self.snapshot()
                answer = render_page(
                    snapshot, view, hostname=socket.gethostname(), pause=self.pause
                )
                _release(snapshot, self.pause)
                return answer
            except RuntimeError as exc:
                if attempt < self.attempts - 1:
                    self.retries += 1
                    continue
                self.page_errors += 1
                self._log_failure(exc)
            except Exception as exc:
                self.page_errors += 1
                self._log_failure(exc)
                break
        return 503, render_unavailable(view, hostname=socket.gethostname())

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self._log_failure(exc)

    def _log_failure(self, exc: Exception) -> None:
        """Log that no snapshot could be taken, at most one line per ``ERROR_LOG_INTERVAL``."""
        now = time.monotonic()
        if now - self._last_logged < ERROR_LOG_INTERVAL:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last message)" if self._unlogged else ""
        logger.error("metrics: no snapshot: %r%s", exc, more, exc_info=exc)
        self._last_logged = now
        self._unlogged = 0

    def _own(self) -> str:
        """The endpoint's own figures, after the daemon's."""
        lines = [
            "# HELP vrrpy_metrics_render_seconds CPU time of the last render "
            "(snapshot and text) in the metrics thread.",
            "# TYPE vrrpy_metrics_render_seconds gauge",
            f"vrrpy_metrics_render_seconds {format_value(self.last_render_seconds)}",
            "# HELP vrrpy_metrics_renders_total Expositions rendered.",
            "# TYPE vrrpy_metrics_renders_total counter",
            f"vrrpy_metrics_renders_total {self.renders}",
            "# HELP vrrpy_metrics_snapshot_retries_total Snapshots retried because the "
            "event loop changed what was being read.",
            "# TYPE vrrpy_metrics_snapshot_retries_total counter",
            f"vrrpy_metrics_snapshot_retries_total {self.retries}",
            "# HELP vrrpy_metrics_snapshot_errors_total Scrapes answered keepalived_up 0 "
            "because no snapshot could be taken.",
            "# TYPE vrrpy_metrics_snapshot_errors_total counter",
            f"vrrpy_metrics_snapshot_errors_total {self.errors}",
        ]
        lines.append("")
        return "\n".join(lines)


class _HTTPServer(HTTPServer):
    allow_reuse_address = True
    metrics: MetricsServer

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        super().__init__(address, handler)

    def service_actions(self) -> None:
        # After each request (and each idle poll): see MetricsServer.pause.
        self.metrics.pause()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "vrrpyd-metrics"
    protocol_version = "HTTP/1.0"

    def setup(self) -> None:
        # Every read and write of this connection: a stalled client holds the thread no longer.
        self.request.settimeout(self.server.metrics.timeout)
        super().setup()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        target = self.path.split("?", 1)[0]
        metrics = self.server.metrics
        if target == metrics.path:
            self._chunks(200, CONTENT_TYPE, metrics.scrape(), send_body)
        elif (view := parse_target(self.path)) is not None:
            code, body = metrics.page(view)
            self._chunks(code, PAGE_CONTENT_TYPE, body, send_body, PAGE_HEADERS)
        else:
            self._simple(404, "text/plain; charset=utf-8", b"not found\n", send_body)

    def _chunks(
        self,
        code: int,
        kind: str,
        body: _Body,
        send_body: bool,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Answer with ``body``, gzip-compressed if the client takes it."""
        gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        chunks = body.gzip() if gzip else body.chunks
        self.send_response(code)
        self.send_header("Content-Type", kind)
        for name, value in headers:
            self.send_header(name, value)
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        length = sum(len(c) for c in chunks) if gzip else body.length
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if send_body:
            for chunk in chunks:
                self.wfile.write(chunk)

    def _simple(self, code: int, kind: str, data: bytes, send_body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("metrics: %s %s", self.address_string(), format % args)
