"""CARP authentication profiles: keys, HMAC inputs, known answers, verification, counters.

The known-answer vectors for OpenBSD and FreeBSD (which cannot run here) are
derived from their ``ip_carp.c`` by :func:`ref_digest`, a transcription of the
C code's steps (``carp_hmac_prepare_ctx``: pad the 20-byte key to 64, XOR
0x36, SHA1Update each field in order, the address selection loop, then the
counter; XOR the pad to 0x5c for the outer hash) written without vrrpy's code
or :mod:`hmac`. Each vector's message is spelled out in hex and in
``docs/carp.md``; the digests were computed once by that reference and are
pinned here. ucarp's vector is a packet captured from the real daemon.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from vrrpy.codec.carp import CarpAdvertisement, decode_carp, encode_carp
from vrrpy.codec.carp_auth import (
    _HAVE_CRYPTOGRAPHY,
    BACKEND,
    PROFILES,
    CarpAuth,
    FreeBSDAuth,
    OpenBSDAuth,
    ReplayWindow,
    UcarpAuth,
    freebsd_hmac_input,
    freebsd_key,
    keyed_state,
    openbsd_hmac_input,
    openbsd_key,
    ucarp_hmac_input,
    ucarp_key,
    ucarp_passfile_password,
    verify_carp,
)
from vrrpy.codec.errors import CarpBadHMAC, CarpReplay
from vrrpy.codec.vrrp import IPAddress, PacketInfo

BACKENDS = ["hashlib", *(["cryptography"] if _HAVE_CRYPTOGRAPHY else [])]
V4 = IPv4Address
V6 = IPv6Address


# --------------------------------------------------------------------------
# The reference: ip_carp.c's steps, transcribed
# --------------------------------------------------------------------------


def ref_digest(key20: bytes, updates: Iterable[bytes], counter: bytes) -> bytes:
    """``carp_hmac_prepare_ctx`` + ``carp_hmac_generate``, step by step."""
    pad = bytearray(64)
    pad[:20] = key20
    for i in range(64):
        pad[i] ^= 0x36
    ctx = hashlib.sha1(bytes(pad))
    for field in updates:
        ctx.update(field)
    ctx.update(counter)
    md = ctx.digest()
    for i in range(64):
        pad[i] ^= 0x36 ^ 0x5C
    return hashlib.sha1(bytes(pad) + md).digest()


def ref_selection_v4(addresses: Iterable[IPv4Address]) -> list[bytes]:
    """The ``do { ... } while (found)`` loop: smallest address above the last, each time."""
    values = [int(a) for a in addresses]
    chosen, cur = [], 0
    while True:
        found, last, cur = 0, cur, 0xFFFFFFFF
        for value in values:
            if last < value < cur:
                cur, found = value, found + 1
        if not found:
            return chosen
        chosen.append(cur.to_bytes(4, "big"))


C1 = bytes.fromhex("0123456789abcdef")
C2 = bytes.fromhex("9e3779b97f4a7c15")  # an OpenBSD replay cookie: random, fixed
LL = V6("fe80::200:5eff:fe00:12a")  # the link-local OpenBSD gives carp(4) with vhid 42's MAC
O2_ADDRESSES = [V6("2001:db8::20"), LL, V4("192.0.2.1"), V6("2001:db8::10")]
O2_V6 = [V6("2001:db8::10").packed, V6("2001:db8::20").packed]  # ascending, by memcmp

# (name, key, fields hashed after the pad, counter, pinned digest)
VECTORS = [
    (
        "O1: two IPv4 addresses, hashed ascending whatever their order",
        b"openbsd-carp",
        [b"\x02", b"\x01", b"\x01", *ref_selection_v4([V4("192.0.2.100"), V4("192.0.2.50")])],
        C1,
        "4e6c77480e8dddec02fce977673d6bc5f40600d6",
    ),
    (
        "O2n: IPv4 then IPv6 ascending, link-local left out (HMAC_NOV6LL, what OpenBSD signs)",
        b"carp6",
        [b"\x02", b"\x01", b"\x2a", V4("192.0.2.1").packed, *O2_V6],
        C2,
        "5dd3eecb98c52bab66290aea50d0237a59802212",
    ),
    (
        "O2o: the same with the link-local address, scope bytes zeroed (HMAC_ORIG)",
        b"carp6",
        [b"\x02", b"\x01", b"\x2a", V4("192.0.2.1").packed, *O2_V6, LL.packed],
        C2,
        "6c10409be5451a22eb4bea49109d6479a418bb64",
    ),
    (
        "O3: a carp interface MAC set by hand, hashed before the vhid",
        b"openbsd-carp",
        [b"\x02", b"\x01", bytes.fromhex("020000000001"), b"\x01", V4("192.0.2.50").packed],
        C1,
        "3f8c30fa1b6b9f0a4d4aad295cdd324a58a95e01",
    ),
    (
        "O4: a 25-byte password keeps its first 19 bytes",
        b"this-password-is-25",
        [b"\x02", b"\x01", b"\x01", V4("192.0.2.50").packed],
        C1,
        "cc7600ee0df4033c2bec6463363b56157b2612f1",
    ),
]


@pytest.mark.parametrize("vector", VECTORS, ids=[v[0].split(":")[0] for v in VECTORS])
def test_the_reference_reproduces_the_pinned_vectors(
    vector: tuple[str, bytes, list[bytes], bytes, str],
) -> None:
    _, password, fields, counter, digest = vector
    assert ref_digest(password.ljust(20, b"\0"), fields, counter).hex() == digest


@pytest.mark.parametrize("backend", BACKENDS)
def test_openbsd_profile_matches_the_vectors(backend: str) -> None:
    o1, o2n, o2o, o3, o4 = (bytes.fromhex(v[4]) for v in VECTORS)
    c1, c2 = int.from_bytes(C1, "big"), int.from_bytes(C2, "big")

    auth = OpenBSDAuth(1, [V4("192.0.2.100"), V4("192.0.2.50")], "openbsd-carp", backend=backend)
    assert auth.sign(c1) == o1
    assert openbsd_hmac_input(1, [V4("192.0.2.100"), V4("192.0.2.50")]) == bytes.fromhex(
        "020101c0000232c0000264"
    )

    auth6 = OpenBSDAuth(42, O2_ADDRESSES, "carp6", backend=backend)
    assert auth6.sign(c2) == o2n  # signs without link-local addresses
    assert auth6.matches(c2, o2n) and auth6.matches(c2, o2o)  # accepts both contexts
    assert openbsd_hmac_input(42, O2_ADDRESSES, link_local=True).hex().endswith(LL.packed.hex())

    mac = bytes.fromhex("020000000001")
    assert OpenBSDAuth(1, [V4("192.0.2.50")], "openbsd-carp", lladdr=mac).sign(c1) == o3
    long_password = "this-password-is-25-bytes"
    assert len(long_password) == 25
    assert OpenBSDAuth(1, [V4("192.0.2.50")], long_password, backend=backend).sign(c1) == o4


@pytest.mark.parametrize("backend", BACKENDS)
def test_freebsd_profile_matches_the_vectors(backend: str) -> None:
    o1, o2n, o2o = (bytes.fromhex(v[4]) for v in VECTORS[:3])
    c1, c2 = int.from_bytes(C1, "big"), int.from_bytes(C2, "big")
    auth = FreeBSDAuth(1, [V4("192.0.2.100"), V4("192.0.2.50")], "openbsd-carp", backend=backend)
    assert auth.sign(c1) == o1  # no link-local, no MAC: OpenBSD's message exactly
    # FreeBSD hashes a link-local address given the vhid: OpenBSD's HMAC_ORIG form, so
    # OpenBSD accepts FreeBSD's adverts, and FreeBSD refuses OpenBSD's (NOV6LL) ones.
    auth6 = FreeBSDAuth(42, O2_ADDRESSES, "carp6", backend=backend)
    assert auth6.sign(c2) == o2o
    assert not auth6.matches(c2, o2n)
    # Without a link-local address on the vhid (the usual FreeBSD set-up) they agree.
    assert FreeBSDAuth(42, [a for a in O2_ADDRESSES if a != LL], "carp6").sign(c2) == o2n


# ucarp: a packet from the live daemon (vhid 7, --pass secret, --addr 192.0.2.200).
UCARP_CAPTURE = bytes.fromhex(
    "21070a070001b58bc8490b925eae2228ebf6096b52e69e443c4463fec3c31934de0c88de"
)
UCARP_INFO = PacketInfo(V4("192.0.2.11"), V4("224.0.0.18"), 255)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ucarp_profile_verifies_a_captured_advert(backend: str) -> None:
    advert = decode_carp(UCARP_CAPTURE, UCARP_INFO)
    verify_carp(advert, UcarpAuth(7, V4("192.0.2.200"), "secret", backend=backend))
    fields = [b"\x02", b"\x01", b"\x07", V4("192.0.2.200").packed]
    assert ref_digest(b"secret".ljust(20, b"\0"), fields, UCARP_CAPTURE[8:16]) == advert.hmac
    # One IPv4 address, no MAC: the BSD profiles build ucarp's message too.
    verify_carp(advert, OpenBSDAuth(7, [V4("192.0.2.200")], "secret"))
    verify_carp(advert, FreeBSDAuth(7, [V4("192.0.2.200")], "secret"))


@pytest.mark.parametrize(
    "auth",
    [
        UcarpAuth(7, V4("192.0.2.200"), "Secret"),  # the password
        UcarpAuth(8, V4("192.0.2.200"), "secret"),  # the vhid
        UcarpAuth(7, V4("192.0.2.201"), "secret"),  # the virtual address
        OpenBSDAuth(7, [V4("192.0.2.200"), V4("192.0.2.201")], "secret"),  # one more address
        OpenBSDAuth(7, [V4("192.0.2.200")], "secret", lladdr=b"\x02\0\0\0\0\x07"),
    ],
    ids=["password", "vhid", "vaddr", "addresses", "lladdr"],
)
def test_any_configuration_difference_fails_verification(auth: CarpAuth) -> None:
    with pytest.raises(CarpBadHMAC) as caught:
        verify_carp(decode_carp(UCARP_CAPTURE, UCARP_INFO), auth)
    assert caught.value.reason == "carp_bad_hmac"


def test_the_hmac_covers_the_counter_but_no_header_field() -> None:
    auth = UcarpAuth(7, V4("192.0.2.200"), "secret")
    advert = decode_carp(UCARP_CAPTURE, UCARP_INFO)
    # advskew, advbase and demote are not covered: a changed one still verifies (CARP's design).
    for changed in (
        advert._replace(advskew=0),
        advert._replace(advbase=255),
        advert._replace(demote=9),
    ):
        verify_carp(decode_carp(encode_carp(changed), UCARP_INFO), auth)
    for bad in (advert._replace(counter=advert.counter ^ 1), advert._replace(hmac=bytes(20))):
        with pytest.raises(CarpBadHMAC):
            verify_carp(bad, auth)


def test_without_cryptography_hashlib_signs_the_same() -> None:
    # cryptography is optional: blocked, the module falls back to hashlib, same digests.
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from ipaddress import IPv4Address\n"
        "from vrrpy.codec import carp_auth\n"
        "assert carp_auth.BACKEND == 'hashlib'\n"
        "auth = carp_auth.UcarpAuth(7, IPv4Address('192.0.2.200'), 'secret')\n"
        f"print(auth.sign({int.from_bytes(UCARP_CAPTURE[8:16], 'big')}).hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == UCARP_CAPTURE[16:].hex()


def test_both_backends_give_the_same_digests() -> None:
    message = openbsd_hmac_input(1, [V4("192.0.2.50")])
    digests = {keyed_state(b"k".ljust(20, b"\0"), message, b).digest(C1) for b in BACKENDS}
    assert len(digests) == 1
    assert BACKEND in BACKENDS
    with pytest.raises(ValueError, match="backend"):
        keyed_state(b"k", message, "md5")


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "bsd", "ucarp"),
    [
        (b"", bytes(20), ValueError),  # ucarp: "You must supply a password"
        (b"secret", b"secret".ljust(20, b"\0"), b"secret".ljust(20, b"\0")),
        (b"x" * 19, b"x" * 19 + b"\0", b"x" * 19 + b"\0"),
        (b"x" * 20, b"x" * 19 + b"\0", ValueError),  # BSD: strlcpy cuts; ucarp: too long
        (b"y" * 64, b"y" * 19 + b"\0", ValueError),
        (b"ab\0cd", b"ab".ljust(20, b"\0"), b"ab".ljust(20, b"\0")),  # a C string ends at NUL
    ],
    ids=["empty", "short", "19", "20", "64", "nul"],
)
def test_what_each_makes_of_a_password(
    password: bytes, bsd: bytes, ucarp: bytes | type[Exception]
) -> None:
    assert openbsd_key(password) == freebsd_key(password) == bsd
    if isinstance(ucarp, bytes):
        assert ucarp_key(password) == ucarp
    else:
        with pytest.raises(ucarp):
            ucarp_key(password)


def test_str_passwords_are_utf8_and_raw_keys_are_accepted() -> None:
    assert openbsd_key("mot-de-passé") == "mot-de-passé".encode().ljust(20, b"\0")
    auth = UcarpAuth(7, V4("192.0.2.200"), key=b"secret")
    verify_carp(decode_carp(UCARP_CAPTURE, UCARP_INFO), auth)
    assert auth.key == b"secret".ljust(20, b"\0")
    assert "secret" not in repr(auth)
    with pytest.raises(ValueError):
        UcarpAuth(7, V4("192.0.2.200"), key=bytes(21))


def test_ucarp_passfile_is_its_first_line() -> None:
    assert ucarp_passfile_password(b"secret\n") == b"secret"
    assert ucarp_passfile_password(b"secret\r\nsecond line\n") == b"secret\r"
    assert ucarp_passfile_password(b"no newline") == b"no newline"
    assert ucarp_passfile_password(b"z" * 600) == b"z" * 511  # fgets into 512 bytes
    with pytest.raises(ValueError):
        ucarp_passfile_password(b"")


# --------------------------------------------------------------------------
# HMAC inputs
# --------------------------------------------------------------------------


def test_ipv4_before_ipv6_each_ascending_each_once() -> None:
    addresses: list[IPAddress] = [
        V6("2001:db8::2"),
        V4("203.0.113.9"),
        V4("192.0.2.1"),
        V6("2001:db8::1"),
        V4("192.0.2.1"),
    ]
    expected = b"\x02\x01\x05" + V4("192.0.2.1").packed + V4("203.0.113.9").packed
    expected += V6("2001:db8::1").packed + V6("2001:db8::2").packed
    assert openbsd_hmac_input(5, addresses) == freebsd_hmac_input(5, addresses) == expected
    assert openbsd_hmac_input(5, reversed(addresses)) == expected


def test_the_selection_loop_never_yields_its_own_bounds() -> None:
    # Starts at 0.0.0.0 / ::, looks strictly below 255.255.255.255 / ffff:...:ffff.
    odd: list[IPAddress] = [
        V4("0.0.0.0"),
        V4("255.255.255.255"),
        V6("::"),
        V6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        V4("192.0.2.1"),
    ]
    assert openbsd_hmac_input(1, odd) == b"\x02\x01\x01" + V4("192.0.2.1").packed
    assert ref_selection_v4([a for a in odd if isinstance(a, V4)]) == [V4("192.0.2.1").packed]


def test_scope_bytes_of_link_local_addresses_are_zeroed() -> None:
    # The kernel's fe80:IFINDEX::... form and the wire form hash alike.
    embedded = V6("fe80:3::1")
    assert freebsd_hmac_input(1, [embedded]) == b"\x02\x01\x01" + V6("fe80::1").packed
    assert openbsd_hmac_input(1, [embedded], link_local=True) == freebsd_hmac_input(1, [embedded])
    assert openbsd_hmac_input(1, [embedded]) == b"\x02\x01\x01"
    # A global address is hashed as it is.
    assert freebsd_hmac_input(1, [V6("2001:db8:3::1")]).endswith(V6("2001:db8:3::1").packed)


def test_ucarp_hashes_its_one_ipv4_address() -> None:
    assert ucarp_hmac_input(7, V4("192.0.2.200")) == bytes.fromhex("020107c00002c8")
    with pytest.raises(ValueError):
        ucarp_hmac_input(7, V6("2001:db8::1"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ucarp_hmac_input(0, V4("192.0.2.200"))
    with pytest.raises(ValueError):
        openbsd_hmac_input(1, [], lladdr=b"\x01")


def test_profiles_are_named() -> None:
    assert set(PROFILES) == {"openbsd", "freebsd", "ucarp"}
    assert all(PROFILES[name].profile == name for name in PROFILES)


def test_an_advert_for_another_vhid_is_refused_before_hashing() -> None:
    advert = decode_carp(UCARP_CAPTURE, UCARP_INFO)._replace(vhid=8)
    with pytest.raises(CarpBadHMAC, match="not this profile"):
        verify_carp(advert, UcarpAuth(7, V4("192.0.2.200"), "secret"))


def test_sign_then_verify_round_trips_through_the_wire() -> None:
    auth = OpenBSDAuth(9, [V4("198.51.100.7"), V6("2001:db8::7")], "pw")
    wire = encode_carp(CarpAdvertisement(vhid=9, advskew=0, advbase=1, counter=42), auth)
    verify_carp(decode_carp(wire, UCARP_INFO), auth)


# --------------------------------------------------------------------------
# ReplayWindow
# --------------------------------------------------------------------------

PEER = (V4("192.0.2.11"), 7)


def feed(window: ReplayWindow, counters: Iterable[int], peer: object = PEER) -> list[bool]:
    """Which of ``counters`` the window accepts, in order."""
    accepted = []
    for counter in counters:
        try:
            window.check(peer, counter)  # type: ignore[arg-type]
        except CarpReplay as exc:
            assert exc.reason == "carp_replay"
            accepted.append(False)
        else:
            accepted.append(True)
    return accepted


def test_openbsd_constant_cookie_is_accepted() -> None:
    assert feed(ReplayWindow(), [0xC0FFEE] * 5) == [True] * 5


def test_a_lone_ucarp_masters_random_counters_are_accepted() -> None:
    # Counters from the live capture: a fresh random value in every advert.
    counters = [0xC8490B925EAE2228, 0x77318A919732923F, 0x434FF14107A5CB69, 0x82FB8BFAC50660F8]
    assert feed(ReplayWindow(), counters) == [True] * 4


def test_a_counting_peer_may_lose_adverts_and_wrap() -> None:
    top = 2**64 - 2
    # ucarp wraps 2**64-1 to 0 explicitly; FreeBSD's uint64_t wraps the same way.
    assert feed(ReplayWindow(), [top, top + 1, 0, 1, 5, 900]) == [True] * 6


def test_copies_of_recent_adverts_are_refused() -> None:
    window = ReplayWindow()
    assert feed(window, [10, 11, 12, 11, 12, 10]) == [True, True, True, False, False, False]
    random_peer = ("other", 7)
    assert feed(window, [999, 5, 999], peer=random_peer) == [True, True, False]


def test_a_counting_peer_loses_one_advert_when_it_jumps() -> None:
    window = ReplayWindow()
    # 100..102 count; 7 is an old advert replayed (refused); 103 carries on.
    assert feed(window, [100, 101, 102, 7, 103]) == [True, True, True, False, True]
    # A restart: the first jump is refused, the next advert accepted whatever it is.
    assert feed(window, [2**60, 2**61, 2**61 + 1]) == [False, True, True]


def test_without_monotonic_a_jump_is_accepted() -> None:
    assert feed(ReplayWindow(monotonic=False), [100, 101, 102, 7]) == [True] * 4


def test_memory_and_peers_are_bounded() -> None:
    window = ReplayWindow(memory=4, max_peers=3)
    assert feed(window, [1, 2, 3, 4, 5, 6]) == [True] * 6
    # 2 is no longer remembered (only 3..6 are), but this peer counts: a jump, refused once.
    assert feed(window, [2]) == [False]
    random_peer = ReplayWindow(memory=2)
    # A random sender's counter older than the memory is accepted again: the documented limit.
    assert feed(random_peer, [50, 2**40, 2**50, 50]) == [True, True, True, True]
    for peer in range(10):
        window.check(("p", peer), 1)
    assert len(window) == 3
    window.forget(("p", 9))
    assert len(window) == 2
    with pytest.raises(ValueError):
        ReplayWindow(window=0)


def test_check_after_a_forgotten_peer_starts_afresh() -> None:
    window = ReplayWindow()
    feed(window, [5, 6, 7])
    window.forget(PEER)
    assert feed(window, [5]) == [True]


def test_any_ip_address_kind_works_as_a_peer_key() -> None:
    window = ReplayWindow()
    for address in (ip_address("192.0.2.1"), ip_address("fe80::1")):
        window.check((address, 1), 1)
    assert len(window) == 2
