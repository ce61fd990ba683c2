"""Virtual addresses and virtual MACs on Linux interfaces, through netlink (pyroute2).

The runtime's only way to change interfaces. It remembers what it added, so it
removes only addresses vrrpy put there (an address the administrator
configured is never touched), and it is opened inside the network namespace
the caller runs in.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, TypeAlias

logger = logging.getLogger("vrrpy.net")

Interface: TypeAlias = IPv4Interface | IPv6Interface
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
ADDRESS_PROTO = 112
"""IFA_PROTO (Linux >= 6.3) vrrpy stamps on the addresses it adds: VRRP's IP protocol number.

It is how a new run tells a virtual address left by a crashed run (ours: remove it)
from one the administrator configured (not ours: never touch it)."""


VMAC_ALIAS = "vrrpy vmac"
"""The alias (IFLA_IFALIAS) vrrpy gives the VMAC links it creates: how a later run tells its
own leftover from a link of the same name that someone else made."""


class VmacError(RuntimeError):
    """The VMAC could not be made; the message says why, for a person to act on."""


class VmacConflict(VmacError):
    """A link with the VMAC's name exists and is not one vrrpy made for this instance."""


def kernel_marks_addresses() -> bool:
    """True if this kernel keeps an address's IFA_PROTO (Linux 6.3 and later)."""
    release = os.uname().release.split("-")[0].split(".")
    try:
        major, minor = int(release[0]), int(release[1])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (6, 3)


_EEXIST = errno.EEXIST
_GONE = (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV)


def vmac_address(vrid: int, family: int) -> str:
    """The VRRP virtual MAC (RFC 9568 7.3): 00:00:5e:00:01:VRID, or 00:00:5e:00:02:VRID for IPv6."""
    return f"00:00:5e:00:0{1 if family == 4 else 2}:{vrid:02x}"


class _SyncIPRoute:
    """pyroute2's synchronous IPRoute, confined to a thread of its own.

    pyroute2 0.9 drives its synchronous API with an asyncio event loop of its
    own, which refuses to run inside the runtime's running loop. So the handle
    lives in one worker thread and every call is handed to it; netlink calls
    take well under a millisecond, so the caller simply waits for the answer.
    """

    def __init__(self, initializer: Callable[[], object] | None = None) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vrrpy-netlink", initializer=initializer
        )
        self._ipr: Any = self._pool.submit(self._open).result()

    @staticmethod
    def _open() -> Any:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]  # runtime only

        return IPRoute()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._ipr, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._pool.submit(method, *args, **kwargs).result()

        return call

    def shutdown(self) -> None:
        self._pool.submit(self._ipr.close).result()
        self._pool.shutdown()


class Netlink:
    """A pyroute2 IPRoute handle plus the bookkeeping of what we added.

    ``initializer`` runs first in the handle's worker thread (the runtime
    passes :func:`vrrpy.runtime.realtime.worker_initializer`: the loop waits
    for that thread, so it must not be preempted by ordinary processes).
    """

    def __init__(self, initializer: Callable[[], object] | None = None) -> None:
        self._ipr: Any = _SyncIPRoute(initializer)
        self.marks = kernel_marks_addresses()
        """Whether added addresses carry :data:`ADDRESS_PROTO` (kernel support)."""
        self.added: dict[tuple[int, Interface], None] = {}
        """(ifindex, address) pairs vrrpy added and has not removed yet."""
        self._held: dict[tuple[int, str, str], list[int | None]] = {}
        self._cache: dict[tuple[str, int | str], Any] | None = None

    def close(self) -> None:
        """Close the netlink socket and its thread."""
        self._ipr.shutdown()

    # ------------------------------------------------------------- links

    def index(self, ifname: str) -> int:
        """The interface index of ``ifname``; ``KeyError`` if there is no such interface."""
        cache = self._cache
        if cache is not None and ("index", ifname) in cache:
            return int(cache[("index", ifname)])
        found = self._ipr.link_lookup(ifname=ifname)
        if not found:
            raise KeyError(ifname)
        if cache is not None:
            cache[("index", ifname)] = int(found[0])
        return int(found[0])

    def mac(self, ifindex: int) -> str:
        """The interface's MAC address."""
        cache = self._cache
        if cache is not None and ("mac", ifindex) in cache:
            return str(cache[("mac", ifindex)])
        link = self._ipr.get_links(ifindex)[0]
        mac = str(link.get_attr("IFLA_ADDRESS"))
        if cache is not None:
            cache[("mac", ifindex)] = mac
        return mac

    def addresses(self, ifindex: int) -> list[Interface]:
        """Every address on the interface, as interfaces (address/prefix)."""
        return list(self.addresses_with_proto(ifindex))

    @contextlib.contextmanager
    def cached(self) -> Iterator[None]:
        """Within this block, each interface's index, addresses and MAC are read once.

        Starting hundreds of instances reads the same interface hundreds of
        times, and each read returns every address on it (the Masters' virtual
        ones included): without the cache, start-up is quadratic.
        """
        self._cache = {}
        try:
            yield
        finally:
            self._cache = None

    def addresses_with_proto(self, ifindex: int) -> dict[Interface, int]:
        """Every address on the interface, with its IFA_PROTO (0 when unset)."""
        cache = self._cache
        if cache is not None and ("addr", ifindex) in cache:
            return dict(cache[("addr", ifindex)])
        result: dict[Interface, int] = {}
        for msg in self._ipr.get_addr(index=ifindex):
            addr = msg.get_attr("IFA_ADDRESS")
            prefix = msg["prefixlen"]
            iface: Interface
            if msg["family"] == 10:
                iface = IPv6Interface(f"{addr}/{prefix}")
            else:
                iface = IPv4Interface(f"{addr}/{prefix}")
            result[iface] = int(msg.get_attr("IFA_PROTO") or 0)
        if cache is not None:
            cache[("addr", ifindex)] = dict(result)
        return result

    def hold_sysctl(self, family: int, ifname: str, key: str, value: int) -> None:
        """Set an interface sysctl while anyone needs it; the first holder saves the original."""
        entry = self._held.get((family, ifname, key))
        if entry is None:
            old = self.set_sysctl(family, ifname, key, value)
            self._held[(family, ifname, key)] = [old, 1]
        else:
            entry[1] = (entry[1] or 0) + 1

    def release_sysctl(self, family: int, ifname: str, key: str) -> None:
        """Drop one hold; the last one restores the original value."""
        entry = self._held.get((family, ifname, key))
        if entry is None:
            return
        entry[1] = (entry[1] or 0) - 1
        if not entry[1]:
            del self._held[(family, ifname, key)]
            if entry[0] is not None:
                self.set_sysctl(family, ifname, key, entry[0])

    def set_sysctl(self, family: int, ifname: str, key: str, value: int) -> int | None:
        """Set /proc/sys/net/ipv{4,6}/conf/IFNAME/KEY; return the old value (None if it
        could not be set).

        A setting the kernel does not have (IPv6 disabled, an older kernel) is
        logged at debug; one it refuses (a read-only ``/proc/sys`` in a
        container, no CAP_NET_ADMIN) is logged as a warning naming the path and
        what it stays at: keepalived goes on in both cases, and so does vrrpy.
        """
        path = f"/proc/sys/net/ipv{family}/conf/{ifname}/{key}"
        old: int | None = None
        try:
            with open(path) as handle:
                old = int(handle.read().strip())
            with open(path, "w") as handle:
                handle.write(str(value))
        except FileNotFoundError:
            logger.debug("%s: not in this kernel; not set", path)
            return None
        except (OSError, ValueError) as exc:
            now = "unknown" if old is None else str(old)
            logger.warning("could not set %s to %d (it stays %s): %s", path, value, now, exc)
            return None
        return old

    def primary_ipv4(self, ifindex: int, exclude: set[IPv4Address]) -> IPv4Address | None:
        """The interface's primary IPv4 address (the first one that is not a virtual address)."""
        for iface in self.addresses(ifindex):
            if isinstance(iface, IPv4Interface) and iface.ip not in exclude:
                return iface.ip
        return None

    def link_local(self, ifindex: int) -> IPv6Address | None:
        """The interface's IPv6 link-local address, unless it is still tentative (DAD)."""
        cache = self._cache
        if cache is not None and ("ll", ifindex) in cache:
            return cache[("ll", ifindex)]  # type: ignore[no-any-return]
        found: IPv6Address | None = None
        for msg in self._ipr.get_addr(index=ifindex, family=10):
            addr = IPv6Address(msg.get_attr("IFA_ADDRESS"))
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            if addr.is_link_local and not flags & IFA_F_TENTATIVE:
                found = addr
                break
        if cache is not None and found is not None:
            cache[("ll", ifindex)] = found
        return found

    def add_vmac(self, parent: int, name: str, mac: str) -> tuple[int, bool]:
        """Create a private-mode macvlan ``name`` on ``parent`` with ``mac``, up: (index, ours).

        As keepalived does: no IPv6 address generated from the virtual MAC (it
        would be the same on every router, and would send router solicitations
        from the virtual MAC); ARP answered only for the macvlan's own addresses
        (``arp_ignore=1``); ``accept_local`` and no reverse-path filter so that
        it can receive with no address of its own.

        The link is stamped with the alias :data:`VMAC_ALIAS`. A link of that
        name which already exists is adopted only if it carries the stamp (an
        earlier vrrpyd made it and died before removing it) and is the same
        macvlan (same parent, same MAC); anything else is someone else's link,
        and :class:`VmacConflict` says what is in the way. The second value is
        always True: every link returned here is vrrpy's to delete.
        """
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        try:
            index = self.index(name)
        except KeyError:
            try:
                self._ipr.link(
                    "add",
                    ifname=name,
                    kind="macvlan",
                    link=parent,
                    macvlan_mode="private",
                    address=mac,
                )
            except NetlinkError as exc:
                hint = (
                    ": vrrpyd needs CAP_NET_ADMIN to make it (run as root, or give the "
                    "capability; docs/systemd.md)"
                    if exc.code in (errno.EPERM, errno.EACCES)
                    else ""
                )
                raise VmacError(
                    f"cannot create the macvlan {name}: {os.strerror(exc.code)}{hint}"
                ) from None
            index = self.index(name)
            self._ipr.link("set", index=index, ifalias=VMAC_ALIAS)
        else:
            self._check_adoptable(index, name, parent, mac)
            logger.warning("%s: adopted the VMAC an earlier vrrpyd run left behind", name)
        self.set_sysctl(6, name, "addr_gen_mode", 1)
        self.set_sysctl(4, name, "arp_ignore", 1)
        self.set_sysctl(4, name, "accept_local", 1)
        self.set_sysctl(4, name, "rp_filter", 0)
        self._ipr.link("set", index=index, state="up")
        return index, True

    def _check_adoptable(self, index: int, name: str, parent: int, mac: str) -> None:
        link = self._ipr.get_links(index)[0]
        alias = link.get_attr("IFLA_IFALIAS")
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        found_mac = str(link.get_attr("IFLA_ADDRESS") or "").lower()
        if alias != VMAC_ALIAS:
            raise VmacConflict(
                f"a link named {name} already exists and vrrpy did not create it "
                f"({kind or 'unknown kind'}, MAC {found_mac or 'none'}, alias {alias!r}): "
                "vrrpy never adopts or deletes a link it did not make; remove or rename it, "
                "or set use_vmac = false"
            )
        if kind != "macvlan" or link.get_attr("IFLA_LINK") != parent or found_mac != mac:
            raise VmacConflict(
                f"{name} was made by vrrpy but no longer matches this instance "
                f"({kind}, MAC {found_mac}, parent index {link.get_attr('IFLA_LINK')}; "
                f"want macvlan, MAC {mac}, parent index {parent}): remove it"
            )

    def remove_link(self, name: str) -> None:
        """Delete a link vrrpy created (a VMAC); nothing if it is gone."""
        with contextlib.suppress(KeyError):
            self._ipr.link("del", index=self.index(name))

    # --------------------------------------------------------- addresses

    def add(self, ifindex: int, address: Interface) -> bool:
        """Add ``address``; IPv6 without DAD. Returns False if it was already there.

        An address that was already present is not recorded as ours, so it is
        never removed by :meth:`remove`.
        """
        from pyroute2.netlink.exceptions import NetlinkError

        kwargs: dict[str, Any] = {}
        if address.version == 6:
            kwargs["flags"] = IFA_F_NODAD
        if self.marks:
            kwargs["proto"] = ADDRESS_PROTO
        try:
            self._ipr.addr(
                "add",
                index=ifindex,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
                **kwargs,
            )
        except NetlinkError as exc:
            if exc.code == _EEXIST:
                return False
            raise
        self.added[(ifindex, address)] = None
        return True

    def remove(self, ifindex: int, address: Interface, force: bool = False) -> bool:
        """Remove ``address`` if vrrpy added it (or ``force``). Returns True if removed.

        The address stays recorded as ours until the kernel has taken it away
        (or says it is already gone): a removal that fails raises, and the
        caller can try again later; nothing is forgotten on the way.
        """
        from pyroute2.netlink.exceptions import NetlinkError

        key = (ifindex, address)
        if not force and key not in self.added:
            return False
        try:
            self._ipr.addr(
                "del",
                index=ifindex,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
            )
        except NetlinkError as exc:
            if exc.code in _GONE:
                self.added.pop(key, None)
                return False
            raise
        self.added.pop(key, None)
        return True
