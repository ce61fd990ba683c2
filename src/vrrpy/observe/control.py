"""vrrpyd's control socket: what ``vrrpctl`` asks, and the live stream of transitions.

A UNIX stream socket (``[global] control_socket``, ``/run/vrrpyd/vrrpyd.sock``
by default), mode 0600, or 0660 with ``control_group``: the file's permissions
are the access control, as for FRR's vtysh sockets. One request per
connection, a JSON object on one line:

``{"command": "status"}``
    one line back: ``{"ok": true, "daemon": {...}, "instances": {name: {...}}}``,
    each instance in FRR's ``show vrrp json`` shape (:func:`vrrpy.observe.show.frr_json`)
    with vrrpy's whole status under ``"vrrpy"``.
``{"command": "events"}``
    ``{"ok": true, "events": "follow"}``, then one line per event as it
    happens (:class:`EventFeed`), until either side closes.
``{"command": "reload"}``
    SIGHUP to the daemon (the same reload as ``kill -HUP``); ``{"ok": true}``.

Anything else gets ``{"ok": false, "error": "..."}``. Requests over
:data:`MAX_REQUEST` bytes are refused.

Like ``/metrics`` (:mod:`vrrpy.observe.server`, whose measurements decided
this), everything is done by one thread of its own (``vrrpyd-control``), a
runtime worker in vrrpyd, reading the live instance objects: a request never
waits for the protocol loop and the loop never stops for one. The loop's
only part is :meth:`EventFeed.publish` at each transition: one ``deque``
append and one byte into a pipe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from vrrpy.observe.threads import Pacer, is_real_time, name_thread

if TYPE_CHECKING:
    from vrrpy.runtime.gate import LoopGate

__all__ = ["DEFAULT_SOCKET", "MAX_REQUEST", "ControlServer", "EventFeed", "unix_address"]

logger = logging.getLogger("vrrpy.observe")

DEFAULT_SOCKET: Final = "/run/vrrpyd/vrrpyd.sock"
MAX_REQUEST: Final = 4096
"""Bytes a request line may have (they are a few dozen)."""
MAX_CLIENTS: Final = 64
"""Connections open at once (requests being read and event followers); more are closed."""
BACKLOG: Final = 2048
"""Events kept for followers that fall behind; a follower further behind is told and closed."""
SEND_TIMEOUT: Final = 1.0
"""Seconds a follower's socket may refuse an event line before the follower is dropped."""
THREAD_NAME: Final = "vrrpyd-control"


@contextlib.contextmanager
def unix_address(path: str) -> Iterator[str]:
    """``path`` as ``bind``/``connect`` can take it, for as long as the block runs.

    A UNIX socket address holds at most 107 bytes; a longer path (a deep
    temporary directory) is reached through ``/proc/self/fd/N/NAME``, N a
    descriptor of its directory held open meanwhile.
    """
    if len(os.fsencode(path)) <= 100:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


class EventFeed:
    """Transitions (and other events) for whoever follows them.

    :meth:`publish` is the loop's side and costs a ``deque`` append and a
    one-byte write; the serving thread encodes and sends. Each event gets a
    sequence number, so a follower that fell more than :data:`BACKLOG`
    events behind is told how many it missed rather than silently skipped.
    """

    def __init__(self, backlog: int = BACKLOG) -> None:
        self.events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=backlog)
        self.sequence = 0
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue ``event`` (JSON-able) for every follower; never blocks."""
        self.sequence += 1
        self.events.append((self.sequence, event))
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def fileno(self) -> int:
        """Readable when something was published (for a selector)."""
        return self._read

    def drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def since(self, last: int) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        """(events missed, events after sequence ``last``), read from any thread."""
        for _ in range(5):
            try:
                queued = list(self.events)
                break
            except RuntimeError:  # the deque changed while copied
                continue
        else:
            return 0, []
        newer = [(n, e) for n, e in queued if n > last]
        missed = newer[0][0] - last - 1 if newer else 0
        return max(0, missed), newer

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class _Client:
    __slots__ = ("buffer", "following", "last", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.following = False
        self.last = 0


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class ControlServer:
    """Serves the control socket at ``path`` from a thread (see the module docstring).

    ``status()`` returns the ``status`` answer's ``instances`` and ``daemon``
    parts; it runs in the serving thread and must only read. ``reload`` is
    what ``{"command": "reload"}`` calls (vrrpyd: SIGHUP to itself).
    """

    def __init__(
        self,
        path: str,
        status: Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]],
        feed: EventFeed,
        *,
        group: int | None = None,
        reload: Callable[[], None] | None = None,
        thread_init: Callable[[], None] | None = None,
        gate: LoopGate | None = None,
    ) -> None:
        self.path = path
        self.status = status
        self.feed = feed
        self.group = group
        self.reload = reload or (lambda: os.kill(os.getpid(), signal.SIGHUP))
        self.thread_init = thread_init
        self.pacer = Pacer(gate)
        """Called through :meth:`pause` while a status is read and encoded: waits at the
        loop's ``gate`` (:class:`vrrpy.runtime.gate.LoopGate`) and naps if real-time."""
        self.requests = 0
        self.errors = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._clients: dict[int, _Client] = {}

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind (replacing a stale socket file, never anything else) and serve from a thread."""
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise FileExistsError(f"{self.path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                with unix_address(self.path) as address:
                    probe.connect(address)
            except ConnectionRefusedError:
                os.unlink(self.path)  # a socket nobody listens on: a daemon that died
            else:
                raise OSError(f"{self.path}: another daemon answers on it")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mode = 0o660 if self.group is not None else 0o600
        old = os.umask(0o777 & ~mode)
        try:
            with unix_address(self.path) as address:
                listener.bind(address)
        except OSError:
            listener.close()
            raise
        finally:
            os.umask(old)
        try:
            if self.group is not None:
                os.chown(self.path, -1, self.group)
            os.chmod(self.path, mode)
            listener.listen(16)
            listener.setblocking(False)
        except OSError:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close every connection and remove the socket file."""
        thread = self._thread
        if thread is not None:
            with contextlib.suppress(OSError):
                os.write(self._stop_w, b"\0")
            thread.join(5)
            self._thread = None
        for client in list(self._clients.values()):
            client.sock.close()
        self._clients.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def real_time(self) -> bool:
        """Whether the serving thread started real-time (it then naps: :meth:`pause`)."""
        return self.pacer.real_time

    def pause(self) -> None:
        """Keep off the event loop's way (:meth:`vrrpy.observe.server.MetricsServer.pause`)."""
        self.pacer()

    # ------------------------------------------------------------------ serving

    def _serve(self) -> None:
        name_thread(THREAD_NAME)
        if self.thread_init is not None:
            self.thread_init()
        self.pacer.real_time = is_real_time()
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, "accept")
        selector.register(self._stop_r, selectors.EVENT_READ, "stop")
        selector.register(self.feed.fileno(), selectors.EVENT_READ, "feed")
        try:
            while True:
                for key, _ in selector.select():
                    what = key.data
                    if what == "stop":
                        return
                    if what == "accept":
                        self._accept(selector)
                    elif what == "feed":
                        self.feed.drain_wakeups()
                        self._forward(selector)
                    else:
                        self._readable(selector, what)
                self.pause()
        except Exception:  # pragma: no cover - a bug here must not pass silently
            logger.exception("control socket: serving stopped")
        finally:
            selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._clients) >= MAX_CLIENTS:
            sock.close()
            return
        sock.setblocking(False)
        client = _Client(sock)
        self._clients[sock.fileno()] = client
        selector.register(sock, selectors.EVENT_READ, client)

    def _drop(self, selector: selectors.BaseSelector, client: _Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(client.sock)
        self._clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def _readable(self, selector: selectors.BaseSelector, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(selector, client)
            return
        if client.following:
            return  # a follower only listens; what it sends is ignored
        client.buffer += data
        if b"\n" not in client.buffer:
            if len(client.buffer) > MAX_REQUEST:
                self._answer(selector, client, {"ok": False, "error": "request too long"})
            return
        line = client.buffer.split(b"\n", 1)[0]
        self.requests += 1
        try:
            request = json.loads(line)
            command = request.get("command") if isinstance(request, dict) else None
        except (ValueError, UnicodeDecodeError):
            command = None
        if command == "status":
            self._answer(selector, client, self._status())
        elif command == "reload":
            self.reload()
            self._answer(selector, client, {"ok": True})
        elif command == "events":
            client.following = True
            client.last = self.feed.sequence
            if not self._send(client, {"ok": True, "events": "follow"}):
                self._drop(selector, client)
        else:
            self.errors += 1
            self._answer(
                selector, client, {"ok": False, "error": f"unknown request: {line[:80]!r}"}
            )

    def _status(self) -> dict[str, Any]:
        for attempt in range(5):
            try:
                instances, daemon = self.status()
                return {"ok": True, "daemon": dict(daemon), "instances": dict(instances)}
            except RuntimeError:
                if attempt == 4:
                    break
            except Exception as exc:
                self.errors += 1
                logger.error("control socket: no status: %r", exc)
                return {"ok": False, "error": f"no status: {exc}"}
        self.errors += 1
        return {"ok": False, "error": "no status: the daemon kept changing it"}

    def _answer(
        self, selector: selectors.BaseSelector, client: _Client, doc: dict[str, Any]
    ) -> None:
        self._send(client, doc)
        self._drop(selector, client)

    def _send(self, client: _Client, doc: Mapping[str, Any]) -> bool:
        """Write one line; False if the peer is gone or would not take it in time."""
        data = self._encode(doc)
        sock = client.sock
        try:
            sock.settimeout(SEND_TIMEOUT)
            sock.sendall(data)
            sock.setblocking(False)
        except OSError:
            return False
        return True

    def _encode(self, doc: Mapping[str, Any]) -> bytes:
        """``doc`` as one JSON line. A status answer's instances are encoded one by one
        with :meth:`pause` between them: ``json.dumps`` of 2,000 instances at once is one
        C call of tens of milliseconds holding the GIL against the loop."""
        instances = doc.get("instances")
        if not isinstance(instances, Mapping) or len(instances) <= 8:
            return (_dumps(doc) + "\n").encode()
        head = _dumps({k: v for k, v in doc.items() if k != "instances"})[:-1]
        parts = [head, "," if len(head) > 1 else "", '"instances":{']
        for n, (name, instance) in enumerate(instances.items()):
            if n:
                parts.append(",")
                if n % 8 == 0:
                    self.pause()
            parts.append(f"{_dumps(str(name))}:{_dumps(instance)}")
        parts.append("}}\n")
        return "".join(parts).encode()

    def _forward(self, selector: selectors.BaseSelector) -> None:
        for client in [c for c in self._clients.values() if c.following]:
            missed, events = self.feed.since(client.last)
            ok = True
            if missed:
                ok = self._send(client, {"event": "lost", "count": missed})
            for number, event in events:
                if not ok:
                    break
                ok = self._send(client, event)
                client.last = number
            if not ok:
                self._drop(selector, client)
