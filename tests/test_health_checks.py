"""Each check against real servers on this host, over loopback only (127.0.0.1 and ::1).

Servers started here, in the test's own loop: an HTTP/1.1 server with paths that
answer, answer slowly, hang, reset, drip, cut short or speak something else;
an HTTPS one with a certificate made now with ``cryptography`` (recording the
SNI it hears); a UDP DNS responder with one behaviour per query name; a port
whose accept queue is full (a connect that never completes). Each check must
give the right verdict and end within its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import os
import signal
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vrrpy.health.checks import build_dns_query, parse_dns_answers, prepare, run_check
from vrrpy.health.model import DnsCheck, HealthConfigError, HttpCheck, MiscCheck, TcpCheck
from vrrpy.health.state import CheckResult

BODY = b"hello vrrpy\n"
BODY_MD5 = hashlib.md5(BODY).hexdigest()


def run(coro: Awaitable[CheckResult]) -> CheckResult:
    async def main() -> CheckResult:
        return await coro

    return asyncio.run(main())


async def timed(coro: Awaitable[CheckResult]) -> tuple[CheckResult, float]:
    start = time.monotonic()
    result = await coro
    return result, time.monotonic() - start


# --- the HTTP server -------------------------------------------------------------------------


@dataclass
class Http:
    port4: int = 0
    port6: int = 0
    requests: list[bytes] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)


async def _respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, http: Http) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return
    http.requests.append(head)
    http.peers.append(writer.get_extra_info("peername")[0])
    path = head.split(b" ", 2)[1].decode()
    ok = b"HTTP/1.1 200 OK\r\n"
    if path == "/ok":
        writer.write(ok + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    elif path == "/extra":  # more than Content-Length: only Content-Length bytes count
        writer.write(ok + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY + b"trailing junk")
    elif path == "/chunked":
        writer.write(ok + b"Transfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6;ext=1\r\nhello \r\n6\r\nvrrpy\n\r\n0\r\n\r\n")
    elif path == "/close":  # no length: the body ends with the connection
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + BODY)
    elif path == "/503":
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    elif path == "/slow":
        await asyncio.sleep(0.3)
        writer.write(ok + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
    elif path == "/drip":  # headers at once, then a byte every 0.2 s
        writer.write(ok + b"Content-Length: %d\r\n\r\n" % len(BODY))
        for byte in BODY:
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(bytes([byte]))
    elif path == "/hang":
        await asyncio.sleep(3600)
    elif path == "/reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    elif path == "/big":
        writer.write(ok + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000)
    elif path == "/bigchunks":
        writer.write(ok + b"Transfer-Encoding: chunked\r\n\r\n")
        writer.write((b"3e8\r\n" + b"x" * 1000 + b"\r\n") * 5 + b"0\r\n\r\n")
    elif path == "/short":
        writer.write(ok + b"Content-Length: 100\r\n\r\n" + BODY)
    elif path == "/ssh":
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    elif path == "/hugehead":
        writer.write(ok + b"X-Filler: " + b"y" * 20000 + b"\r\n\r\n")
    elif path == "/host":
        host = next(h for h in head.split(b"\r\n") if h.lower().startswith(b"host:"))
        writer.write(ok + b"Content-Length: %d\r\n\r\n" % len(host) + host)
    else:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def http_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[Http]:
    http = Http()
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await _respond(reader, writer, http)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            handlers.discard(task)

    s4 = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    s6 = await asyncio.start_server(handle, "::1", 0, ssl=tls)
    http.port4 = s4.sockets[0].getsockname()[1]
    http.port6 = s6.sockets[0].getsockname()[1]
    try:
        yield http
    finally:
        for task in list(handlers):
            task.cancel()
        for server in (s4, s6):
            server.close()
            await server.wait_closed()


def http(port: int, path: str, ip: str = "127.0.0.1", **kw: Any) -> HttpCheck:
    return HttpCheck(server="rs", connect_ip=ip, connect_port=port, path=path, **kw)


def check_http(path: str, ip: str = "127.0.0.1", **kw: Any) -> tuple[CheckResult, float, Http]:
    async def main() -> tuple[CheckResult, float, Http]:
        async with http_server() as server:
            port = server.port6 if ip == "::1" else server.port4
            result, elapsed = await timed(run_check(http(port, path, ip, **kw)))
            return result, elapsed, server

    return asyncio.run(main())


def test_http_status_in_range_passes_and_the_request_is_keepalived_like() -> None:
    result, _, server = check_http("/ok")
    assert result == CheckResult(True, "status 200")
    request = server.requests[0].decode()
    assert request.startswith("GET /ok HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port4}\r\n" in request
    assert "\r\nConnection: close\r\n" in request


def test_http_status_outside_the_expected_codes_fails() -> None:
    result, _, _ = check_http("/503")
    assert result == CheckResult(False, "status 503 (expected 200-299)")
    result, _, _ = check_http("/503", status_code=((200, 299), (503, 503)))
    assert result.ok


def test_http_digest_is_md5_of_the_body_like_genhash() -> None:
    for path in ("/ok", "/chunked", "/close", "/extra"):
        result, _, _ = check_http(path, digest=BODY_MD5)
        assert result.ok, (path, result)
    result, _, _ = check_http("/ok", digest="0" * 32)
    assert not result.ok and f"MD5 digest {BODY_MD5} mismatch" in result.detail


def test_http_receive_is_a_substring_of_the_body() -> None:
    assert check_http("/chunked", receive="o vrr")[0].ok
    result, _, _ = check_http("/ok", receive="goodbye")
    assert result == CheckResult(False, "status 200, receive string not found")


def test_http_virtualhost_is_the_host_header_and_ipv6_is_bracketed() -> None:
    result, _, server = check_http("/host", ip="::1", receive="[::1]:")
    assert result.ok and f"Host: [::1]:{server.port6}" in server.requests[0].decode()
    result, _, server = check_http("/host", virtualhost="www.example.com", receive="www.")
    assert result.ok and "\r\nHost: www.example.com\r\n" in server.requests[0].decode()


def test_http_a_slow_answer_within_the_timeout_passes() -> None:
    result, elapsed, _ = check_http("/slow", connect_timeout=2.0)
    assert result.ok and 0.3 <= elapsed < 2.0


@pytest.mark.parametrize("path", ["/slow", "/hang", "/drip"])
def test_http_timeout_bounds_the_whole_check(path: str) -> None:
    result, elapsed, _ = check_http(path, connect_timeout=0.25, digest=BODY_MD5)
    assert result == CheckResult(False, "timed out after 0.25 s")
    assert 0.24 <= elapsed < 0.6


def test_http_reset_and_refused_fail_with_their_reason() -> None:
    assert check_http("/reset")[0] == CheckResult(False, "connection reset")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(run_check(http(port, "/")))
    assert result == CheckResult(False, "connection refused")


@pytest.mark.parametrize(
    ("path", "kw", "detail"),
    [
        ("/big", {"max_body": 1000, "receive": "x"}, "body over 1000 bytes (5000)"),
        ("/bigchunks", {"max_body": 1500, "receive": "x"}, "body over 1500 bytes (2000)"),
        ("/short", {"digest": BODY_MD5}, "body cut short after 12 bytes"),
        ("/ssh", {}, "not an HTTP response"),
        ("/hugehead", {}, "response head over 16384 bytes"),
    ],
)
def test_http_bad_answers_fail(path: str, kw: dict[str, Any], detail: str) -> None:
    result, elapsed, _ = check_http(path, connect_timeout=2.0, **kw)
    assert result == CheckResult(False, detail) and elapsed < 1.0


def test_http_without_body_checks_does_not_read_the_body() -> None:
    # A body over the cap does not matter when nothing needs it.
    assert check_http("/big", max_body=10)[0] == CheckResult(True, "status 200")


def test_http_bindto_sets_the_source_address() -> None:
    result, _, server = check_http("/ok", bindto="127.0.0.2")
    assert result.ok and server.peers == ["127.0.0.2"]


# --- HTTPS -----------------------------------------------------------------------------------


@dataclass
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for rs.example and 127.0.0.1, made now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rs.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("rs.example"), x509.IPAddress(ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    out = Cert(directory / "cert.pem", directory / "key.pem")
    out.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


def check_https(cert: Cert, path: str = "/ok", **kw: Any) -> tuple[CheckResult, list[str | None]]:
    async def main() -> tuple[CheckResult, list[str | None]]:
        seen: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert, cert.key)
        context.sni_callback = lambda _obj, name, _ctx: seen.append(name)
        async with http_server(context) as server:
            spec = http(server.port4, path, tls=True, **kw)
            return await run_check(spec), seen

    return asyncio.run(main())


def test_https_with_a_self_signed_certificate_passes_unverified_without_sni(cert: Cert) -> None:
    result, sni = check_https(cert, digest=BODY_MD5)
    assert result.ok and sni == [None]


def test_https_sends_sni_only_when_asked(cert: Cert) -> None:
    result, sni = check_https(cert, sni=True, virtualhost="rs.example")
    assert result.ok and sni == ["rs.example"]
    result, sni = check_https(cert, sni=True, sni_name="other.example", virtualhost="rs.example")
    assert result.ok and sni == ["other.example"]


def test_https_verification_when_asked(cert: Cert) -> None:
    result, _ = check_https(cert, verify=True)  # the system's CAs do not know it
    assert not result.ok and result.detail.startswith("TLS certificate:")
    result, _ = check_https(
        cert, verify=True, ca_file=str(cert.cert), sni=True, sni_name="rs.example"
    )
    assert result.ok, result
    result, _ = check_https(
        cert, verify=True, ca_file=str(cert.cert), sni=True, sni_name="wrong.example"
    )
    assert not result.ok and "Hostname mismatch" in result.detail


def test_https_a_server_that_never_speaks_tls_times_out() -> None:
    async def main() -> tuple[CheckResult, float]:
        async with http_server() as server:  # plain HTTP: waits for a request line for ever
            return await timed(run_check(http(server.port4, "/", tls=True, connect_timeout=0.3)))

    result, elapsed = asyncio.run(main())
    assert result == CheckResult(False, "timed out after 0.3 s") and elapsed < 0.7


def test_a_missing_ca_file_is_refused_before_any_check() -> None:
    with pytest.raises(HealthConfigError, match="TLS context"):
        prepare(http(443, "/", tls=True, verify=True, ca_file="/nonexistent/ca.pem"))


# --- TCP -------------------------------------------------------------------------------------


@contextlib.contextmanager
def full_backlog(ip: str = "127.0.0.1") -> Iterator[int]:
    """A listening port whose accept queue is full: a new connect is never answered."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    listener = socket.socket(family)
    listener.bind((ip, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(family)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((ip, port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_tcp_connect_passes_and_refused_fails(ip: str) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((ip, 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        spec = TcpCheck(server="rs", connect_ip=ip, connect_port=port)
        assert run(run_check(spec)) == CheckResult(True, "connected")
    assert run(run_check(spec)) == CheckResult(False, "connection refused")


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_tcp_a_connect_never_answered_times_out(ip: str) -> None:
    with full_backlog(ip) as port:
        spec = TcpCheck(server="rs", connect_ip=ip, connect_port=port, connect_timeout=0.3)
        result, elapsed = asyncio.run(timed(run_check(spec)))
    assert result == CheckResult(False, "timed out after 0.3 s") and 0.29 <= elapsed < 0.7


def test_tcp_bindto() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        spec = TcpCheck(server="rs", connect_ip="127.0.0.1", connect_port=port, bindto="127.0.0.3")
        assert run(run_check(spec)).ok
        conn, peer = listener.accept()
        conn.close()
    assert peer[0] == "127.0.0.3"


# --- DNS -------------------------------------------------------------------------------------

A, NS, CNAME, SOA, MX, TXT, AAAA = 1, 2, 5, 6, 15, 16, 28


def _name(text: str) -> bytes:
    if text in ("", "."):
        return b"\0"
    return b"".join(bytes([len(x)]) + x.encode() for x in text.rstrip(".").split(".")) + b"\0"


def _rr(qtype: int, rdata: bytes) -> bytes:
    # The owner name is a compression pointer to the question's name (offset 12).
    return struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata


class Responder(asyncio.DatagramProtocol):
    """A tiny DNS server: what it answers depends on the name asked."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[int, str, int]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query_id, flags = struct.unpack_from("!HH", data)
        labels, offset = [], 12
        while data[offset]:
            labels.append(data[offset + 1 : offset + 1 + data[offset]].decode())
            offset += 1 + data[offset]
        qtype = struct.unpack_from("!H", data, offset + 1)[0]
        question = data[12 : offset + 5]
        name = ".".join(labels)
        self.queries.append((flags, name, qtype))
        task = asyncio.ensure_future(self.answer(query_id, name, qtype, question, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def answer(
        self, query_id: int, name: str, qtype: int, question: bytes, addr: Any
    ) -> None:
        assert self.transport is not None
        rcode, records = 0, []
        if name == "ok.example" and qtype == A:
            records = [_rr(A, bytes([192, 0, 2, 7])), _rr(A, bytes([192, 0, 2, 1]))]
        elif name == "six.example" and qtype == AAAA:
            records = [_rr(AAAA, ip_address("2001:db8::1").packed)]
        elif name == "alias.example" and qtype == CNAME:
            records = [_rr(CNAME, b"\x06target" + b"\xc0\x12")]  # "target" + ".example"
        elif name == "mail.example" and qtype == MX:
            records = [_rr(MX, struct.pack("!H", 10) + _name("mx1.example"))]
        elif name == "txt.example" and qtype == TXT:
            records = [_rr(TXT, b"\x03v=o\x02k!")]
        elif name == "" and qtype == SOA:
            records = [_rr(SOA, _name("ns.") + _name("root.") + bytes(20))]
        elif name == "nx.example":
            rcode = 3
        elif name == "fail.example":
            rcode = 2
        elif name == "hang.example":
            return
        elif name == "slow.example":
            await asyncio.sleep(0.3)
            records = [_rr(A, bytes([192, 0, 2, 1]))]
        elif name == "wrongid.example":  # a stray answer first, then the real one
            stray = struct.pack("!HHHHHH", query_id ^ 1, 0x8180, 1, 0, 0, 0) + question
            self.transport.sendto(stray, addr)
            await asyncio.sleep(0.05)
            records = [_rr(A, bytes([192, 0, 2, 1]))]
        header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, len(records), 0, 0)
        self.transport.sendto(header + question + b"".join(records), addr)


@contextlib.asynccontextmanager
async def dns_server(ip: str) -> AsyncIterator[tuple[int, Responder]]:
    loop = asyncio.get_running_loop()
    transport, responder = await loop.create_datagram_endpoint(Responder, local_addr=(ip, 0))
    try:
        yield transport.get_extra_info("sockname")[1], responder
    finally:
        for task in list(responder.tasks):
            task.cancel()
        transport.close()


def check_dns(
    name: str, qtype: str = "A", ip: str = "127.0.0.1", **kw: Any
) -> tuple[CheckResult, float, Responder]:
    async def main() -> tuple[CheckResult, float, Responder]:
        async with dns_server(ip) as (port, responder):
            spec = DnsCheck(
                server="rs",
                connect_ip=ip,
                connect_port=port,
                query_name=name,
                query_type=qtype,
                **kw,
            )
            result, elapsed = await timed(run_check(spec))
            return result, elapsed, responder

    return asyncio.run(main())


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_dns_keepalived_default_query_is_soa_for_the_root(ip: str) -> None:
    result, _, responder = check_dns(".", "SOA", ip)
    assert result == CheckResult(True, "rcode NOERROR")
    assert responder.queries == [(0x0100, "", SOA)]  # recursion desired, as keepalived


@pytest.mark.parametrize(
    ("name", "qtype", "answer"),
    [
        ("ok.example", "A", "192.0.2.1"),
        ("six.example", "AAAA", "2001:DB8:0::1"),
        ("alias.example", "CNAME", "Target.Example."),
        ("mail.example", "MX", "mx1.example"),
        ("txt.example", "TXT", "v=ok!"),
    ],
)
def test_dns_expected_answer_is_found(name: str, qtype: str, answer: str) -> None:
    result, _, _ = check_dns(name, qtype, answer=answer)
    assert result.ok, result


def test_dns_a_missing_answer_fails_and_lists_what_came() -> None:
    result, _, _ = check_dns("ok.example", answer="192.0.2.99")
    assert result == CheckResult(False, "A 192.0.2.99 not in the answer (192.0.2.7, 192.0.2.1)")


def test_dns_rcode_must_match() -> None:
    assert check_dns("nx.example")[0] == CheckResult(False, "rcode NXDOMAIN (expected NOERROR)")
    assert check_dns("fail.example")[0] == CheckResult(False, "rcode SERVFAIL (expected NOERROR)")
    assert check_dns("nx.example", rcode=3)[0].ok


def test_dns_ignores_an_answer_with_another_id() -> None:
    result, _, _ = check_dns("wrongid.example", answer="192.0.2.1")
    assert result.ok


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_dns_no_answer_times_out_and_slow_answers_within_it_pass(ip: str) -> None:
    result, elapsed, _ = check_dns("hang.example", ip=ip, connect_timeout=0.3)
    assert result == CheckResult(False, "timed out after 0.3 s") and 0.29 <= elapsed < 0.7
    result, elapsed, _ = check_dns("slow.example", ip=ip, connect_timeout=0.25)
    assert not result.ok and elapsed < 0.6
    result, elapsed, _ = check_dns("slow.example", ip=ip, connect_timeout=2.0)
    assert result.ok and 0.3 <= elapsed < 1.5


def test_dns_closed_port_is_refused_at_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = DnsCheck(server="rs", connect_ip="127.0.0.1", connect_port=port, connect_timeout=2)
    result, elapsed = asyncio.run(timed(run_check(spec)))
    assert result == CheckResult(False, "connection refused") and elapsed < 1.0


def test_dns_query_bytes_and_answer_parser() -> None:
    query = build_dns_query(0x1234, "www.example.com", A)
    assert query == bytes.fromhex("123401000001000000000000") + (
        b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    )
    assert build_dns_query(1, ".", SOA)[12:] == b"\x00\x00\x06\x00\x01"
    reply = (
        struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
        + query[12:]
        + _rr(A, bytes([10, 0, 0, 1]))
    )
    assert parse_dns_answers(reply, A) == ["10.0.0.1"]
    with pytest.raises(ValueError):
        parse_dns_answers(reply[:-3], A)
    loop = struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0) + b"\xc0\x0c"  # a pointer to itself
    with pytest.raises(ValueError):
        parse_dns_answers(loop, A)


# --- MISC ------------------------------------------------------------------------------------


def misc(command: str, **kw: Any) -> CheckResult:
    return run(run_check(MiscCheck(server="rs", command=command, **kw)))


def test_misc_exit_status() -> None:
    assert misc("/bin/true") == CheckResult(True, "exit 0")
    assert misc("/bin/sh -c 'exit 1'") == CheckResult(False, "exit 1")
    assert misc("/bin/sh -c 'exit 3'") == CheckResult(False, "exit 3")  # no misc_dynamic


def test_misc_dynamic_weights() -> None:
    assert misc("/bin/sh -c 'exit 12'", dynamic=True) == CheckResult(
        True, "exit 12: weight 10", weight=10
    )
    assert misc("/bin/sh -c 'exit 2'", dynamic=True).weight == 0
    assert misc("/bin/sh -c 'exit 0'", dynamic=True) == CheckResult(True, "exit 0")
    assert misc("/bin/sh -c 'exit 1'", dynamic=True) == CheckResult(False, "exit 1")


def test_misc_gets_its_server_in_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    assert misc(f"/bin/sh -c 'echo $VRRPY_HEALTH_SERVER > {out}'").ok
    assert out.read_text() == "rs\n"


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (absent, or a zombie its new parent has not reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def test_misc_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    start = time.monotonic()
    result = misc(f"/bin/sh -c 'sleep 60 & echo $! > {pidfile}; wait'", timeout=0.3)
    elapsed = time.monotonic() - start
    assert result == CheckResult(False, "timed out after 0.3 s") and elapsed < 1.0
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the script's child survived its timeout")
        time.sleep(0.01)


def test_misc_that_cannot_start_fails() -> None:
    result = misc("/nonexistent/check")
    assert not result.ok and result.detail.startswith("could not start")


def test_misc_unknown_user_is_refused_before_any_check() -> None:
    with pytest.raises(HealthConfigError, match="no user"):
        prepare(MiscCheck(server="rs", command="/bin/true", user="no-such-user-here"))


# --- many at once ----------------------------------------------------------------------------


def test_checks_run_concurrently_each_within_its_own_timeout() -> None:
    """Fifty hanging checks and fifty good ones at once: the good ones are not held up."""

    async def main() -> tuple[list[tuple[CheckResult, float]], list[tuple[CheckResult, float]]]:
        async with http_server() as server:
            hang = [http(server.port4, "/hang", connect_timeout=0.5) for _ in range(50)]
            good = [http(server.port6, "/ok", ip="::1", connect_timeout=0.5) for _ in range(50)]
            results = await asyncio.gather(*(timed(run_check(s)) for s in hang + good))
            return results[:50], results[50:]

    hung, fine = asyncio.run(main())
    assert all(r == CheckResult(False, "timed out after 0.5 s") for r, _ in hung)
    assert all(r.ok and elapsed < 0.5 for r, elapsed in fine)
    assert max(elapsed for _, elapsed in hung) < 1.0
