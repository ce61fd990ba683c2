"""sendmmsg batches (vrrpy.runtime.sendbatch), on UDP sockets over loopback: no root needed.

The beat's adverts go out as prebuilt ``mmsghdr`` entries in one call; these
tests check the headers against what ``sendmsg`` sends, the order, the
counting, and that a refused datagram is counted and skipped, not fatal.
"""

from __future__ import annotations

import socket
import struct

import pytest

from vrrpy.runtime import sendbatch

pytestmark = pytest.mark.skipif(not sendbatch.available(), reason="libc has no sendmmsg")


class Owner:
    sent = 0
    send_errors = 0


@pytest.fixture
def pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield rx, tx
    rx.close()
    tx.close()


def test_a_batch_sends_every_datagram_in_order_and_counts_them(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    owner = Owner()
    batch = sendbatch.Batch(tx.fileno(), owner)
    name = sendbatch.sockaddr(rx.getsockname())
    prepared = [sendbatch.Prepared(b"advert %d" % n, name, b"") for n in range(40)]
    for p in prepared:
        batch.add(p)
    assert batch.flush() == 40
    assert [rx.recv(100) for _ in range(40)] == [b"advert %d" % n for n in range(40)]
    assert (owner.sent, owner.send_errors) == (40, 0)
    assert batch.headers == [] and batch.kept == []
    # The same headers again (a beat later): the array is reused.
    for p in prepared[:3]:
        batch.add(p)
    assert batch.flush() == 3
    assert [rx.recv(100) for _ in range(3)] == [b"advert 0", b"advert 1", b"advert 2"]


def test_a_refused_datagram_is_counted_and_the_rest_still_go(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    owner = Owner()
    batch = sendbatch.Batch(tx.fileno(), owner)
    good = sendbatch.sockaddr(rx.getsockname())
    # Port 0 on a UDP send: EINVAL from the kernel for that one datagram.
    bad = sendbatch.sockaddr(("127.0.0.1", 0))
    for payload, name in ((b"one", good), (b"lost", bad), (b"two", good)):
        batch.add(sendbatch.Prepared(payload, name, b""))
    assert batch.flush() == 2
    assert [rx.recv(100), rx.recv(100)] == [b"one", b"two"]
    assert (owner.sent, owner.send_errors) == (2, 1)


def test_a_closed_socket_is_an_error_count_not_an_exception() -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = tx.fileno()
    owner = Owner()
    batch = sendbatch.Batch(fd, owner)
    tx.close()
    batch.add(sendbatch.Prepared(b"x", sendbatch.sockaddr(("127.0.0.1", 9)), b""))
    batch.add(sendbatch.Prepared(b"y", sendbatch.sockaddr(("127.0.0.1", 9)), b""))
    assert batch.flush() == 0
    assert owner.send_errors >= 1 and owner.sent == 0


def test_sockaddr_and_control_are_the_kernel_layouts() -> None:
    v4 = sendbatch.sockaddr(("224.0.0.18", 0))
    assert v4 == struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton("224.0.0.18"))
    v6 = sendbatch.sockaddr(("ff02::12", 0, 0, 7))
    assert len(v6) == 28 and v6[-4:] == struct.pack("=I", 7)
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "ff02::12")
    data = struct.pack("@i4s4s", 3, socket.inet_aton("192.0.2.11"), bytes(4))
    area = sendbatch.control([(socket.IPPROTO_IP, 8, data)])  # IP_PKTINFO
    assert len(area) == socket.CMSG_SPACE(len(data))
    length, level, kind = struct.unpack_from("@Nii", area)
    assert (length, level, kind) == (socket.CMSG_LEN(len(data)), socket.IPPROTO_IP, 8)
    assert area[16 : 16 + len(data)] == data
