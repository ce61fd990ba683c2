"""One health check, on asyncio: TCP connect, HTTP(S) GET, DNS over UDP, a command.

Every check is a coroutine that returns a :class:`~vrrpy.health.state.CheckResult`
and never raises for the server's failure; each is bounded, as a whole, by its
timeout (``connect_timeout``; MISC: ``misc_timeout``), and nothing in it blocks
the loop: sockets are non-blocking (asyncio streams and datagram endpoints),
the TLS handshake runs in asyncio's memory BIO, a command starts through
:func:`vrrpy.backends.notify.run_script` (``posix_spawn`` from a worker thread,
its exit watched through a pidfd).

keepalived applies ``connect_timeout`` to the connect and then to each read
separately; vrrpy bounds the whole attempt by it (as ldirectord's ``alarm``
does), so a server that drips one byte a second cannot hold a check for
ever.

HTTP differences from keepalived, deliberate: the request is HTTP/1.1 with
``Connection: close`` (keepalived's default is HTTP/1.0); a chunked body is
decoded before its MD5 is taken, so ``digest`` is the MD5 of the entity,
which is what keepalived's ``genhash`` prints for the same page fetched with
HTTP/1.0; a body is read at most ``max_body`` bytes (a longer one fails the
check when ``digest`` or ``receive`` needs it), and not read at all when
neither does. TLS is closed without ``close_notify`` (keepalived's quiet
shutdown, its default without ``tls_compliant``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import socket
import ssl
import struct
import sys
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Final, TypeVar

from vrrpy.backends.notify import Script, run_script
from vrrpy.health.model import (
    DNS_RCODES,
    CheckSpec,
    DnsCheck,
    HealthConfigError,
    HttpCheck,
    MiscCheck,
    TcpCheck,
)
from vrrpy.health.state import CheckResult

__all__ = [
    "HEADER_LIMIT",
    "build_dns_query",
    "dns_check",
    "http_check",
    "misc_check",
    "parse_dns_answers",
    "prepare",
    "run_check",
    "tcp_check",
]

HEADER_LIMIT: Final = 16384
"""Bytes of an HTTP status line and headers; a longer head fails the check."""
USER_AGENT: Final = "vrrpy-health"

T = TypeVar("T")


async def _bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable`` cancelled at ``timeout`` (raises :class:`TimeoutError`)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)  # pragma: no cover (3.10)


def _describe_error(exc: BaseException) -> str:
    """A failure in a few words for the log and the state file."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed early"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


async def _guarded(work: Callable[[], Awaitable[CheckResult]], timeout: float) -> CheckResult:
    try:
        return await _bounded(work(), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return CheckResult(False, f"timed out after {timeout:g} s")
    except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
        return CheckResult(False, _describe_error(exc))


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ip_address(ip).version == 6 else socket.AF_INET


# -- TCP_CHECK ------------------------------------------------------------------------------


async def tcp_check(spec: TcpCheck) -> CheckResult:
    """keepalived's TCP_CHECK: the connect completes (then the socket is closed)."""

    async def connect() -> CheckResult:
        loop = asyncio.get_running_loop()
        sock = socket.socket(_family(spec.connect_ip), socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if spec.bindto is not None:
                sock.bind((spec.bindto, 0))
            await loop.sock_connect(sock, (spec.connect_ip, spec.connect_port))
        finally:
            sock.close()
        return CheckResult(True, "connected")

    return await _guarded(connect, spec.connect_timeout)


# -- HTTP_GET / SSL_GET ---------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _tls_context(verify: bool, ca_file: str | None, check_hostname: bool) -> ssl.SSLContext:
    """One client context per setting (loading a CA store costs milliseconds: not per check)."""
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = check_hostname
    return context


def _context_for(spec: HttpCheck) -> ssl.SSLContext:
    return _tls_context(spec.verify, spec.ca_file, spec.verify and spec.server_hostname is not None)


def _request(spec: HttpCheck) -> bytes:
    return (
        f"GET {spec.path} HTTP/1.1\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        f"Host: {spec.host_header}\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (lower-cased names; the last of repeated ones)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError("not an HTTP response")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(parts[1]), headers


class _BodyTooLarge(Exception):
    pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int) -> bytes:
    """The entity body: chunked decoded, at most Content-Length bytes, else to EOF; > cap raises."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                return bytes(body)  # trailers are not read: the connection is closed next
            if len(body) + size > cap:
                raise _BodyTooLarge(len(body) + size)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        if n > cap:
            raise _BodyTooLarge(n)
        return await reader.readexactly(n)
    body = bytearray()
    while chunk := await reader.read(65536):
        body += chunk
        if len(body) > cap:
            raise _BodyTooLarge(len(body))
    return bytes(body)


def _codes(spec: HttpCheck) -> str:
    return " ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spec.status_code)


async def http_check(spec: HttpCheck) -> CheckResult:
    """keepalived's HTTP_GET / SSL_GET, with ldirectord's ``receive`` (see the module docstring)."""

    async def get() -> CheckResult:
        ssl_context = _context_for(spec) if spec.tls else None
        reader, writer = await asyncio.open_connection(
            spec.connect_ip,
            spec.connect_port,
            ssl=ssl_context,
            server_hostname=(spec.server_hostname or "") if spec.tls else None,
            local_addr=(spec.bindto, 0) if spec.bindto is not None else None,
            limit=HEADER_LIMIT,
        )
        try:
            writer.write(_request(spec))
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                return CheckResult(False, f"response head over {HEADER_LIMIT} bytes")
            except asyncio.IncompleteReadError as exc:
                what = "no response" if not exc.partial else "response head cut short"
                return CheckResult(False, f"connection closed: {what}")
            status, headers = _parse_head(head)
            if not any(low <= status <= high for low, high in spec.status_code):
                return CheckResult(False, f"status {status} (expected {_codes(spec)})")
            if not spec.needs_body:
                return CheckResult(True, f"status {status}")
            try:
                body = await _read_body(reader, headers, spec.max_body)
            except _BodyTooLarge as exc:
                return CheckResult(False, f"body over {spec.max_body} bytes ({exc.args[0]})")
            except asyncio.IncompleteReadError as exc:
                return CheckResult(False, f"body cut short after {len(exc.partial)} bytes")
            if spec.digest is not None:
                digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
                if digest != spec.digest:
                    return CheckResult(False, f"status {status}, MD5 digest {digest} mismatch")
            if spec.receive is not None and spec.receive.encode() not in body:
                return CheckResult(False, f"status {status}, receive string not found")
            return CheckResult(True, f"status {status}, {len(body)} bytes matched")
        finally:
            if spec.tls:
                writer.transport.abort()  # quiet shutdown: no close_notify, no waiting
            else:
                writer.close()

    return await _guarded(get, spec.connect_timeout)


# -- DNS_CHECK ------------------------------------------------------------------------------

_RD: Final = 0x0100
_QR: Final = 0x8000
_HEADER: Final = struct.Struct("!HHHHHH")
_RR: Final = struct.Struct("!HHIH")
_RCODE_NAMES: Final = {v: k for k, v in DNS_RCODES.items()}


def _encode_name(name: str) -> bytes:
    if name in (".", ""):
        return b"\0"
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode()
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\0"


def build_dns_query(query_id: int, name: str, qtype: int) -> bytes:
    """A standard query with recursion desired (as keepalived's ``dns_make_query``), class IN."""
    return (
        _HEADER.pack(query_id, _RD, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", qtype, 1)
    )


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at ``offset``: (dotted name, offset after it)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(message):
            raise ValueError("name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message) or jumps > 64:
                raise ValueError("bad compression pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            jumps += 1
            continue
        if length & 0xC0:
            raise ValueError("bad label type")
        offset += 1
        if length == 0:
            break
        labels.append(message[offset : offset + length].decode("ascii", "replace"))
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def _rdata_text(message: bytes, rtype: int, start: int, length: int) -> str:
    rdata = message[start : start + length]
    if (rtype == 1 and length == 4) or (rtype == 28 and length == 16):
        return str(ip_address(rdata))
    if rtype in (2, 5, 12):
        return _read_name(message, start)[0]
    if rtype == 15:
        return _read_name(message, start + 2)[0]
    if rtype == 16:
        parts, i = [], 0
        while i < len(rdata):
            n = rdata[i]
            parts.append(rdata[i + 1 : i + 1 + n].decode("utf-8", "replace"))
            i += 1 + n
        return "".join(parts)
    return rdata.hex()


def parse_dns_answers(message: bytes, qtype: int) -> list[str]:
    """The answer records of type ``qtype`` in a response, as text; ``ValueError`` if malformed."""
    if len(message) < _HEADER.size:
        raise ValueError("short message")
    _, _, qdcount, ancount, _, _ = _HEADER.unpack_from(message)
    offset = _HEADER.size
    for _ in range(qdcount):
        offset = _read_name(message, offset)[1] + 4
    answers = []
    for _ in range(ancount):
        offset = _read_name(message, offset)[1]
        if offset + _RR.size > len(message):
            raise ValueError("record runs past the message")
        rtype, _rclass, _ttl, rdlength = _RR.unpack_from(message, offset)
        offset += _RR.size
        if offset + rdlength > len(message):
            raise ValueError("record data runs past the message")
        if rtype == qtype:
            answers.append(_rdata_text(message, rtype, offset, rdlength))
        offset += rdlength
    return answers


def _answer_matches(expected: str, got: str, qtype: int) -> bool:
    if qtype in (1, 28):
        try:
            return ip_address(expected) == ip_address(got)
        except ValueError:
            return False
    if qtype == 16:
        return expected == got
    return expected.rstrip(".").lower() == got.rstrip(".").lower()


class _DnsProtocol(asyncio.DatagramProtocol):
    """Waits for the datagram that answers ``query_id`` (others are ignored, as keepalived)."""

    def __init__(self, query_id: int, done: asyncio.Future[bytes]) -> None:
        self.query_id = query_id
        self.done = done

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.done.done() or len(data) < _HEADER.size:
            return
        answer_id, flags = struct.unpack_from("!HH", data)
        if answer_id == self.query_id and flags & _QR:
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # A connected UDP socket hears ICMP port / host unreachable as ECONNREFUSED etc.
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("socket closed"))


async def dns_check(spec: DnsCheck) -> CheckResult:
    """keepalived's DNS_CHECK over UDP, with ldirectord's answer match (``answer``)."""

    async def query() -> CheckResult:
        loop = asyncio.get_running_loop()
        query_id = random.getrandbits(16)
        done: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(query_id, done),
            remote_addr=(spec.connect_ip, spec.connect_port),
            local_addr=(spec.bindto, 0) if spec.bindto is not None else None,
            family=_family(spec.connect_ip),
        )
        try:
            transport.sendto(build_dns_query(query_id, spec.query_name, spec.qtype))
            message = await done
        finally:
            transport.close()
        flags = struct.unpack_from("!H", message, 2)[0]
        rcode = flags & 0x000F
        if rcode != spec.rcode:
            got = _RCODE_NAMES.get(rcode, str(rcode))
            want = _RCODE_NAMES.get(spec.rcode, str(spec.rcode))
            return CheckResult(False, f"rcode {got} (expected {want})")
        if spec.answer is None:
            return CheckResult(True, f"rcode {_RCODE_NAMES.get(rcode, rcode)}")
        try:
            answers = parse_dns_answers(message, spec.qtype)
        except (ValueError, struct.error) as exc:
            return CheckResult(False, f"malformed response ({exc})")
        if any(_answer_matches(spec.answer, a, spec.qtype) for a in answers):
            return CheckResult(True, f"{spec.query_type} {spec.answer} answered")
        shown = ", ".join(answers[:4]) or "no record"
        return CheckResult(False, f"{spec.query_type} {spec.answer} not in the answer ({shown})")

    return await _guarded(query, spec.connect_timeout)


# -- MISC_CHECK -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _misc_script(spec: MiscCheck) -> Script:
    try:
        return Script(spec.command, shell=spec.shell, user=spec.user, group=spec.group)
    except ValueError as exc:
        raise HealthConfigError(f"{spec.where}: {exc}") from None


async def misc_check(spec: MiscCheck) -> CheckResult:
    """keepalived's MISC_CHECK: the command's exit status, ``misc_dynamic``'s weights.

    The run's own timeout kills its process group (SIGKILL; keepalived sends
    SIGTERM first); the outer bound adds a second for the spawn queue and the
    output drain, so the check still ends if the spawner thread is busy.
    """
    timeout = spec.attempt_timeout()
    script = _misc_script(spec)

    async def run() -> CheckResult:
        result = await run_script(
            script.argv(),
            env={"VRRPY_HEALTH_SERVER": spec.server, "VRRPY_HEALTH_CHECK": spec.label},
            timeout=timeout,
            label=f"health {spec.label}",
        )
        if result.outcome == "exit":
            code = result.status
            if code == 0:
                return CheckResult(True, "exit 0")
            if spec.dynamic and 2 <= code <= 255:
                return CheckResult(True, f"exit {code}: weight {code - 2}", weight=code - 2)
            return CheckResult(False, f"exit {code}")
        if result.outcome == "timeout":
            return CheckResult(False, f"timed out after {timeout:g} s")
        return CheckResult(False, result.describe(timeout))

    return await _guarded(run, timeout + 1.0)


# -- dispatch -------------------------------------------------------------------------------


def prepare(spec: CheckSpec) -> None:
    """Resolve now what a check needs later (a MISC user, a TLS CA file); raises
    :class:`HealthConfigError` naming the check, so a bad config fails before any check runs."""
    if isinstance(spec, MiscCheck):
        _misc_script(spec)
    elif isinstance(spec, HttpCheck) and spec.tls:
        try:
            _context_for(spec)
        except (OSError, ssl.SSLError) as exc:
            raise HealthConfigError(f"{spec.where}: TLS context: {exc}") from None


async def run_check(spec: CheckSpec) -> CheckResult:
    """Perform one attempt of ``spec``: never raises for the server's failure, always ends."""
    if isinstance(spec, TcpCheck):
        return await tcp_check(spec)
    if isinstance(spec, HttpCheck):
        return await http_check(spec)
    if isinstance(spec, DnsCheck):
        return await dns_check(spec)
    return await misc_check(spec)
