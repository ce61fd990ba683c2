"""CARP authentication: keys, HMAC-SHA1 inputs and counters, as each implementation has them.

CARP's only security is an HMAC-SHA1 over a message the advert does not
carry: the receiver rebuilds it from its own configuration (version, type,
VHID, its virtual addresses) and appends the advert's 8-byte counter. Each
implementation builds that message and its key its own way, so each is a
named profile here, checked against its source (``docs/carp.md`` has the
facts and where each comes from):

* :class:`OpenBSDAuth`: ``sys/netinet/ip_carp.c`` (``carp_hmac_prepare_ctx``):
  2, 1, [the carp interface's MAC, if set by hand], VHID, the IPv4 addresses
  ascending, the IPv6 addresses ascending. Link-local IPv6 addresses are left
  out when signing and accepted with or without on receipt (two contexts).
* :class:`FreeBSDAuth`: the same without the MAC, link-local addresses always
  in (scope bytes zeroed), the addresses being those given this VHID.
* :class:`UcarpAuth`: 2, 1, VHID, the one virtual IPv4 address.

Everything is pure: no sockets, no clock. Per packet, the keyed state is
copied, never rebuilt: each profile precomputes the HMAC over the fixed part
once (the inner and outer pads hashed, the message prefix absorbed), so
signing or checking an advert hashes 8 bytes and a digest
(``bench/carp_bench.py`` measures the ways to do it; see :data:`BACKEND`).
Digests are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from ipaddress import IPv4Address
from typing import ClassVar

from vrrpy.codec.carp import CarpAdvertisement
from vrrpy.codec.errors import CarpBadHMAC, CarpReplay
from vrrpy.codec.vrrp import IPAddress

try:  # the faster per-packet path (bench/carp_bench.py); hashlib's is complete without it
    _hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
    _chmac = importlib.import_module("cryptography.hazmat.primitives.hmac")
    _HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_CRYPTOGRAPHY = False

CARP_KEY_LEN = 20
"""``sc_key`` in all three: 20 bytes. HMAC pads a key to SHA-1's 64-byte block with
zeros, so the zeros after a short password change nothing."""

BACKEND = "cryptography" if _HAVE_CRYPTOGRAPHY else "hashlib"
"""The per-packet HMAC: ``cryptography``'s ``HMAC.copy()`` when installed (about a
third faster in ``bench/carp_bench.py``), else ``hashlib`` inner and outer SHA-1
states copied by hand. Both give the same digests (``tests/test_carp_auth.py``)."""

_VERSION_TYPE = b"\x02\x01"  # CARP_VERSION, CARP_ADVERTISEMENT: two bytes, not the 0x21 of the wire
_COUNTER_SPACE = 2**64


# --------------------------------------------------------------------------
# Keys: what each turns a password into
# --------------------------------------------------------------------------


def _c_string(password: bytes | str) -> bytes:
    data = password.encode() if isinstance(password, str) else bytes(password)
    return data.split(b"\0", 1)[0]  # a C string ends at its first NUL


def openbsd_key(password: bytes | str) -> bytes:
    """``ifconfig carpN pass PASSWORD``: ``strlcpy(carpr_key, password, 20)``.

    At most 19 bytes are kept (a 20-byte or longer password is cut to its first
    19, silently); the rest is zeros on an interface configured afresh; an
    empty password gives 20 zeros. Nothing is hashed, despite the header's
    comment ("a sha1 hash of a passphrase").
    """
    return _c_string(password)[: CARP_KEY_LEN - 1].ljust(CARP_KEY_LEN, b"\0")


def freebsd_key(password: bytes | str) -> bytes:
    """``ifconfig IF vhid N pass PASSWORD``: the same ``strlcpy`` as OpenBSD's.

    One difference: the kernel only takes a key whose first byte is not NUL
    (``carp_ioctl``), so an empty password leaves the key as it was: 20 zeros
    for a new VHID, which is what this returns.
    """
    return openbsd_key(password)


def ucarp_key(password: bytes | str) -> bytes:
    """``ucarp --pass=PASSWORD``: the password and its NUL in 20 zeroed bytes.

    ucarp refuses what the BSDs cut: a password of 20 bytes or more ("Password
    too long") and an empty one ("You must supply a password"); both raise
    ``ValueError`` here. So a 20-byte BSD password is the same key as its first
    19 bytes in ucarp.
    """
    data = _c_string(password)
    if not data:
        raise ValueError("ucarp: You must supply a password")
    if len(data) + 1 > CARP_KEY_LEN:
        raise ValueError("ucarp: Password too long (at most 19 bytes)")
    return data.ljust(CARP_KEY_LEN, b"\0")


def ucarp_passfile_password(content: bytes) -> bytes:
    """The password ``ucarp --passfile=FILE`` reads from ``content``.

    ``fgets`` into 512 bytes: the first line, at most 511 bytes, its ``\\n``
    removed (a ``\\r`` stays: a CRLF file gives a password ending in CR). An
    empty file is an error in ucarp (``ValueError`` here).
    """
    if not content:
        raise ValueError("ucarp: error reading passfile: unexpected end of file")
    line = content[:511]
    if b"\n" in line:
        line = line[: line.index(b"\n")]
    return line.split(b"\0", 1)[0]


def _check_key(key: bytes) -> bytes:
    if len(key) > CARP_KEY_LEN:
        raise ValueError(f"a CARP key is at most {CARP_KEY_LEN} bytes")
    return bytes(key).ljust(CARP_KEY_LEN, b"\0")


# --------------------------------------------------------------------------
# HMAC inputs: the message each hashes before the counter
# --------------------------------------------------------------------------


def _scope_embedded(packed: bytes) -> bool:
    """KAME's ``IN6_IS_SCOPE_EMBED``: link-local unicast, link- or interface-local multicast."""
    first, second = packed[0], packed[1]
    return (first == 0xFE and second & 0xC0 == 0x80) or (first == 0xFF and second & 0x0F in (1, 2))


def _ascending_v4(addresses: Iterable[IPAddress]) -> bytes:
    """IPv4 addresses smallest first, each once, as the BSDs' selection loop yields them.

    The loop looks for the smallest address strictly above the last one and
    strictly below 255.255.255.255, starting from 0.0.0.0: so those two never
    count, and duplicates count once.
    """
    values = sorted({int(a) for a in addresses if a.version == 4} - {0, 0xFFFFFFFF})
    return b"".join(value.to_bytes(4, "big") for value in values)


def _ascending_v6(addresses: Iterable[IPAddress], link_local: bool) -> bytes:
    """IPv6 addresses in ``memcmp`` order, each once, scope bytes (2 and 3) zeroed.

    The kernel keeps a link-local address's interface index in bytes 2-3;
    both BSDs zero them before hashing, so the hashed form is the wire form.
    With ``link_local`` false (OpenBSD's HMAC_NOV6LL) those addresses are left
    out. As for IPv4, ``::`` and ``ffff:...:ffff`` never count.
    """
    chosen: set[bytes] = set()
    for address in addresses:
        if address.version != 6:
            continue
        packed = address.packed
        if _scope_embedded(packed):
            if not link_local:
                continue
            packed = packed[:2] + b"\0\0" + packed[4:]
        chosen.add(packed)
    chosen -= {bytes(16), b"\xff" * 16}
    return b"".join(sorted(chosen))


def _vhid_byte(vhid: int) -> bytes:
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid must be 1..255, not {vhid}")
    return bytes([vhid])


def openbsd_hmac_input(
    vhid: int,
    addresses: Iterable[IPAddress],
    *,
    link_local: bool = False,
    lladdr: bytes | None = None,
) -> bytes:
    """What OpenBSD's ``carp_hmac_prepare_ctx`` hashes after the key, before the counter.

    ``addresses`` are all the carp interface's addresses (with ``carpnodes``
    load balancing, every node shares them; only the VHID differs).
    ``link_local`` picks the context: false is HMAC_NOV6LL, the one OpenBSD
    signs with; true is HMAC_ORIG, which it also accepts. ``lladdr`` is the
    carp interface's MAC when it was set by hand (not 00:00:5e:00:01:VHID,
    not the parent's): OpenBSD then hashes it before the VHID, in the first
    carpnode's context only.
    """
    addresses = tuple(addresses)
    mac = b""
    if lladdr is not None:
        if len(lladdr) != 6:
            raise ValueError("lladdr is a 6-byte MAC")
        mac = bytes(lladdr)
    return (
        _VERSION_TYPE
        + mac
        + _vhid_byte(vhid)
        + _ascending_v4(addresses)
        + _ascending_v6(addresses, link_local)
    )


def freebsd_hmac_input(vhid: int, addresses: Iterable[IPAddress]) -> bytes:
    """What FreeBSD's ``carp_hmac_prepare`` hashes (FreeBSD 10 to 14).

    ``addresses`` are those given this VHID (``ifconfig ... vhid N``): version,
    type, VHID, IPv4 ascending, IPv6 ascending with link-local ones included,
    scope bytes zeroed. (FreeBSD before 10 hashed them in interface order.)
    """
    addresses = tuple(addresses)
    return (
        _VERSION_TYPE
        + _vhid_byte(vhid)
        + _ascending_v4(addresses)
        + _ascending_v6(addresses, link_local=True)
    )


def ucarp_hmac_input(vhid: int, vaddr: IPv4Address) -> bytes:
    """What ucarp's ``carp_hmac_prepare`` hashes: version, type, VHID, the one ``--addr``."""
    if vaddr.version != 4:
        raise ValueError("ucarp is IPv4 only")
    return _VERSION_TYPE + _vhid_byte(vhid) + vaddr.packed


# --------------------------------------------------------------------------
# The keyed state, computed once
# --------------------------------------------------------------------------


class _HashlibState:
    """HMAC-SHA1 (RFC 2104) with the inner and outer SHA-1 states kept after the fixed part."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, message: bytes) -> None:
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha1(bytes(b ^ 0x36 for b in block) + message)
        self._outer = hashlib.sha1(bytes(b ^ 0x5C for b in block))

    def digest(self, counter: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(counter)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class _CryptographyState:
    """HMAC-SHA1 from ``cryptography``, its context copied after the fixed part."""

    __slots__ = ("_state",)

    def __init__(self, key: bytes, message: bytes) -> None:
        self._state = _chmac.HMAC(key, _hashes.SHA1())
        self._state.update(message)

    def digest(self, counter: bytes) -> bytes:
        state = self._state.copy()
        state.update(counter)
        result: bytes = state.finalize()
        return result


def keyed_state(
    key: bytes, message: bytes, backend: str | None = None
) -> _HashlibState | _CryptographyState:
    """The precomputed HMAC over ``key`` and ``message``; ``.digest(counter)`` finishes it."""
    chosen = backend or BACKEND
    if chosen == "cryptography":
        if not _HAVE_CRYPTOGRAPHY:
            raise ValueError("the cryptography package is not installed")
        return _CryptographyState(key, message)
    if chosen == "hashlib":
        return _HashlibState(key, message)
    raise ValueError(f"unknown HMAC backend {chosen!r}")


# --------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------


class CarpAuth:
    """A key and HMAC input, prepared once: signs counters and checks adverts.

    Use a profile (:class:`OpenBSDAuth`, :class:`FreeBSDAuth`,
    :class:`UcarpAuth`); each knows how its implementation derives the key
    and the message. ``key`` (at most 20 bytes) overrides the password when
    the raw key is known. The first message signs; any of them verifies.
    """

    profile: ClassVar[str] = "custom"
    __slots__ = ("_signer", "_verifiers", "key", "vhid")

    def __init__(
        self, vhid: int, key: bytes, messages: tuple[bytes, ...], backend: str | None = None
    ) -> None:
        if not messages:
            raise ValueError("at least one HMAC input")
        _vhid_byte(vhid)
        self.vhid = vhid
        self.key = _check_key(key)
        states = tuple(keyed_state(self.key, m, backend) for m in dict.fromkeys(messages))
        self._signer = states[0]
        self._verifiers = states

    def sign(self, counter: int) -> bytes:
        """The 20-byte HMAC for an advert carrying ``counter``."""
        return self._signer.digest(counter.to_bytes(8, "big"))

    def matches(self, counter: int, digest: bytes) -> bool:
        """True if ``digest`` is right for ``counter``.

        Each comparison is constant-time; trying the contexts in turn only
        tells a timer which context matched, which is no secret.
        """
        raw = counter.to_bytes(8, "big")
        if hmac.compare_digest(self._signer.digest(raw), digest):
            return True
        return any(hmac.compare_digest(s.digest(raw), digest) for s in self._verifiers[1:])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} vhid={self.vhid}>"  # never the key


class OpenBSDAuth(CarpAuth):
    """OpenBSD's ``carp(4)``: signs without link-local addresses, accepts with or without."""

    profile = "openbsd"
    __slots__ = ()

    def __init__(
        self,
        vhid: int,
        addresses: Iterable[IPAddress],
        password: bytes | str = b"",
        *,
        key: bytes | None = None,
        lladdr: bytes | None = None,
        backend: str | None = None,
    ) -> None:
        addresses = tuple(addresses)
        send = openbsd_hmac_input(vhid, addresses, link_local=False, lladdr=lladdr)
        orig = openbsd_hmac_input(vhid, addresses, link_local=True, lladdr=lladdr)
        chosen = openbsd_key(password) if key is None else key
        super().__init__(vhid, chosen, (send, orig), backend)


class FreeBSDAuth(CarpAuth):
    """FreeBSD's ``carp(4)`` (10 to 14): one context, link-local addresses included."""

    profile = "freebsd"
    __slots__ = ()

    def __init__(
        self,
        vhid: int,
        addresses: Iterable[IPAddress],
        password: bytes | str = b"",
        *,
        key: bytes | None = None,
        backend: str | None = None,
    ) -> None:
        chosen = freebsd_key(password) if key is None else key
        super().__init__(vhid, chosen, (freebsd_hmac_input(vhid, addresses),), backend)


class UcarpAuth(CarpAuth):
    """ucarp 1.5.2: one virtual IPv4 address; the password is 1..19 bytes."""

    profile = "ucarp"
    __slots__ = ()

    def __init__(
        self,
        vhid: int,
        vaddr: IPv4Address,
        password: bytes | str = b"",
        *,
        key: bytes | None = None,
        backend: str | None = None,
    ) -> None:
        chosen = ucarp_key(password) if key is None else key
        super().__init__(vhid, chosen, (ucarp_hmac_input(vhid, vaddr),), backend)


PROFILES: dict[str, type[CarpAuth]] = {
    cls.profile: cls for cls in (OpenBSDAuth, FreeBSDAuth, UcarpAuth)
}


def verify_carp(advert: CarpAdvertisement, auth: CarpAuth) -> None:
    """Raise :class:`~vrrpy.codec.errors.CarpBadHMAC` unless ``advert`` is signed for ``auth``.

    The HMAC covers our configured VHID, addresses and key, and the advert's
    counter: nothing else of the header (not advskew, advbase, demote), which
    is CARP's design, not ours to fix. An advert for another VHID cannot
    match; demultiplex by VHID first.
    """
    if advert.vhid != auth.vhid:
        raise CarpBadHMAC(f"vhid {advert.vhid} is not this profile's {auth.vhid}")
    if not auth.matches(advert.counter, advert.hmac):
        raise CarpBadHMAC(f"vhid {advert.vhid} ({auth.profile} profile)")


# --------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------


class _Peer:
    __slots__ = ("last", "pending", "seen", "seen_set", "streak")

    def __init__(self, counter: int, memory: int) -> None:
        self.last = counter
        self.streak = 0
        self.pending = False
        self.seen: deque[int] = deque((counter,), maxlen=memory)
        self.seen_set = {counter}

    def accept(self, counter: int, streak: int) -> None:
        self.streak = streak
        self.pending = False
        if counter not in self.seen_set:
            if len(self.seen) == self.seen.maxlen:
                self.seen_set.discard(self.seen[0])
            self.seen.append(counter)
            self.seen_set.add(counter)
        self.last = counter


class ReplayWindow:
    """Opt-in counter check per peer (e.g. ``(source, vhid)``), in bounded memory.

    No implementation checks counters (FreeBSD: "XXX Replay protection goes
    here"), and what they send limits what any check can do:

    * OpenBSD sends one random counter for ever (a per-VHID cookie): a copy
      of an advert is the advert. Accepted, repeated.
    * FreeBSD and ucarp send a fresh random counter in *every* advert until
      they first hear a valid advert for their VHID; then they take that
      advert's counter and add 1 per advert. A lone Master, or one whose
      Backups are all silent, is random for ever (a live ucarp shows it).

    The policy, then:

    1. A peer's first counter is accepted (nothing is known yet).
    2. A counter this peer sent among its last ``memory`` is refused as a
       replay, unless it repeats the latest and the peer has not been seen
       counting up (OpenBSD's cookie).
    3. A counter 1..``window`` ahead of the latest is accepted: the peer
       counts up (adverts may be lost); two such steps in a row mark it as
       counting.
    4. Any other new counter is accepted (a random sender, a restart), except
       that, with ``monotonic``, a peer marked counting has its *first* jump
       refused (a replay of an old advert looks like that); the next advert
       is accepted whatever it is, so a restarted peer loses one advert, less
       than the three a Backup waits for.

    So it refuses copies of recent adverts from anyone, and single stale
    adverts from peers that count; it cannot protect an OpenBSD peer's adverts,
    or a random sender's older than ``memory``. :meth:`check` raises
    :class:`~vrrpy.codec.errors.CarpReplay`; at most ``max_peers`` peers are
    remembered (the least recently heard is forgotten first).
    """

    def __init__(
        self,
        *,
        window: int = 1024,
        memory: int = 64,
        max_peers: int = 1024,
        monotonic: bool = True,
    ) -> None:
        if window < 1 or memory < 1 or max_peers < 1:
            raise ValueError("window, memory and max_peers are at least 1")
        self.window = window
        self.memory = memory
        self.max_peers = max_peers
        self.monotonic = monotonic
        self._peers: OrderedDict[Hashable, _Peer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._peers)

    def forget(self, peer: Hashable) -> None:
        """Drop what is known of ``peer`` (its configuration changed, say)."""
        self._peers.pop(peer, None)

    def check(self, peer: Hashable, counter: int) -> None:
        """Accept ``counter`` from ``peer`` and remember it, or raise ``CarpReplay``.

        Call it after :func:`verify_carp`: an advert with a bad HMAC must not
        move the window.
        """
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self.max_peers:
                self._peers.popitem(last=False)
            self._peers[peer] = _Peer(counter, self.memory)
            return
        self._peers.move_to_end(peer)
        if counter in state.seen_set:
            if counter == state.last and state.streak == 0:
                state.accept(counter, 0)
                return
            raise CarpReplay(f"counter {counter:#018x} seen recently from {peer!r}")
        ahead = (counter - state.last) % _COUNTER_SPACE
        if 1 <= ahead <= self.window:
            state.accept(counter, min(state.streak + 1, 2))
            return
        if self.monotonic and state.streak >= 2 and not state.pending:
            state.pending = True
            raise CarpReplay(f"counter {counter:#018x} jumps off {peer!r}'s sequence")
        state.accept(counter, 0)
