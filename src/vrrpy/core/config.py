"""What one virtual router is told at construction: validated once, then trusted.

Bad values fail here, at load, with a :class:`ConfigError` naming the field and
what is wrong, never later on the packet path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vrrpy.codec.vrrp import V2_AUTH_LEN, V3_MAX_INTERVAL_CS, ChecksumForm, IPAddress

V_MAX_ADDRESSES = 255
"""An advert's address count is one byte."""


class ConfigError(ValueError):
    """A configuration value is invalid; ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class RouterConfig:
    """Configuration of one VRRP virtual router (one VRID on one interface, one family).

    ``primary_address`` is this router's own address on the interface: the
    source of its adverts and the tie-breaker between equal priorities (for
    IPv6 it must be the interface's link-local address, RFC 9568 5.1.2.1).

    ``preempt_delay`` follows keepalived: for this many seconds after startup a
    Backup does not preempt a lower-priority Master; afterwards it does.

    ``peers``, when not empty, closes the router to strangers: an advert whose
    source is not one of them is dropped (``not_a_peer``). They are the
    addresses the peers send from, so for IPv6 their link-local addresses
    (RFC 9568 5.1.2.1: a global one could never match). Empty means anyone on
    the link is heard, as RFC 9568 has it.

    ``higher_prio_send_advert`` is keepalived's option of that name (off by
    default, as there): a Master that yields to a better one first sends one
    advert at its own priority, so that the better Master, hearing a weaker
    one, re-announces the addresses. Without it, a split brain that ends with
    the weaker Master hearing the better one first leaves the hosts that
    followed the weaker one on its MAC until their neighbour entries expire.
    """

    vrid: int
    primary_address: IPAddress
    virtual_addresses: tuple[IPAddress, ...]
    priority: int = 100
    version: int = 3
    advert_interval: float = 1.0
    preempt: bool = True
    preempt_delay: float = 0.0
    accept: bool = False
    auth_pass: str = ""
    checksum_form: ChecksumForm = ChecksumForm.PSEUDO_HEADER
    name: str = ""
    peers: tuple[IPAddress, ...] = ()
    higher_prio_send_advert: bool = False
    interval_cs: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.primary_address, (IPv4Address, IPv6Address)):
            raise ConfigError("primary_address", "must be an IPv4Address or IPv6Address")
        if isinstance(self.advert_interval, bool) or not isinstance(
            self.advert_interval, (int, float)
        ):
            raise ConfigError("advert_interval", "must be a number of seconds")
        family = self.primary_address.version
        problems = router_problems(
            vrid=self.vrid,
            version=self.version,
            priority=self.priority,
            advert_interval=self.advert_interval,
            virtual_addresses=self.virtual_addresses,
            preempt_delay=self.preempt_delay,
            auth_pass=self.auth_pass,
            peers=self.peers,
            family=family,
            primary_address=self.primary_address,
        )
        if problems:
            raise problems[0]
        if family == 6 and not self.primary_address.is_link_local:
            raise ConfigError(
                "primary_address", "IPv6 adverts come from a link-local address (fe80::/10)"
            )
        object.__setattr__(self, "interval_cs", round(self.advert_interval * 100))
        object.__setattr__(self, "peers", tuple(self.peers))

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.primary_address.version

    @property
    def auth_type(self) -> int:
        """VRRPv2 auth type: 1 (simple text password) when ``auth_pass`` is set, else 0."""
        return 1 if self.auth_pass else 0

    @property
    def auth_data(self) -> bytes:
        """The 8 authentication bytes a VRRPv2 advert carries (password, zero-padded)."""
        return self.auth_pass.encode().ljust(V2_AUTH_LEN, b"\x00") if self.auth_pass else b""


# ---------------------------------------------------------------- the rules
#
# Each rule is written once, here. RouterConfig raises the first problem; a
# configuration file loader (vrrpyd's) calls router_problems() and reports every
# problem at once, each under its own key.


def _seconds(value: float) -> str:
    return f"{value:g}"


def vrid_problem(vrid: int) -> str | None:
    """Why ``vrid`` is not a VRID (1..255), or None."""
    if isinstance(vrid, bool) or not isinstance(vrid, int) or not 1 <= vrid <= 255:
        return f"must be an integer 1..255, got {vrid!r}"
    return None


def priority_problem(priority: int) -> str | None:
    """Why ``priority`` is not a priority (1..255; 255 means address owner), or None."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 255:
        return f"must be an integer 1..255, got {priority!r}"
    return None


def version_problem(version: int) -> str | None:
    """Why ``version`` is not a VRRP version vrrpy speaks, or None."""
    if isinstance(version, bool) or version not in (2, 3):
        return f"must be 2 or 3, got {version!r}"
    return None


def interval_problem(seconds: float, version: int) -> str | None:
    """Why ``seconds`` cannot be carried as an advert interval by ``version``, or None.

    VRRPv3 carries centiseconds in 12 bits (RFC 9568 5.2.7); VRRPv2 whole
    seconds in 8 (RFC 3768 5.3.7).
    """
    if version == 3:
        cs = round(seconds * 100)
        if not 1 <= cs <= V3_MAX_INTERVAL_CS or abs(cs - seconds * 100) > 1e-6:
            return f"VRRPv3 takes 0.01 .. 40.95 seconds in steps of 0.01, got {_seconds(seconds)}"
    elif version == 2 and (not float(seconds).is_integer() or not 1 <= seconds <= 255):
        return f"VRRPv2 takes whole seconds 1..255, got {_seconds(seconds)}"
    return None


def preempt_delay_problem(seconds: float) -> str | None:
    """Why ``seconds`` is not a preempt delay, or None."""
    if seconds < 0:
        return f"must be >= 0 seconds, got {_seconds(seconds)}"
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` can be neither a virtual address nor a peer, or None."""
    if address.is_unspecified:
        return "is unspecified"
    if address.is_multicast:
        return "is multicast"
    if address.is_loopback:
        return "is loopback"
    if isinstance(address, IPv6Address) and address.scope_id is not None:
        return "carries a %zone; the interface already says which link"
    return None


def _addresses(items: Sequence[IPAddress], problems: list[str], what: str) -> list[IPAddress]:
    """The usable, distinct addresses of ``items``; why each other one is not, in ``problems``."""
    good: list[IPAddress] = []
    seen: set[IPAddress] = set()
    for item in items:
        if not isinstance(item, (IPv4Address, IPv6Address)):
            problems.append(f"{item!r} is not {what}")
            continue
        problem = address_problem(item)
        if problem:
            problems.append(f"{item} {problem}")
        elif item in seen:
            problems.append(f"{item} is listed twice")
        else:
            good.append(item)
        seen.add(item)
    return good


def _not_a_list(items: object) -> bool:
    return isinstance(items, (str, bytes)) or not isinstance(items, (tuple, list))


def virtual_addresses_problems(addresses: Sequence[IPAddress]) -> list[str]:
    """Why ``addresses`` cannot be one instance's virtual addresses (empty: they can)."""
    if _not_a_list(addresses):
        return ["must be a tuple of IP addresses"]
    if not addresses:
        return ["at least one address is required"]
    if len(addresses) > V_MAX_ADDRESSES:
        return [f"at most {V_MAX_ADDRESSES} addresses fit in an advert, got {len(addresses)}"]
    problems: list[str] = []
    good = _addresses(addresses, problems, "an IP address")
    v4 = [a for a in good if a.version == 4]
    v6 = [a for a in good if a.version == 6]
    if v4 and v6:
        problems.append(
            f"mixes IPv4 ({v4[0]}) and IPv6 ({v6[0]}): one family per instance, "
            "so make one instance for each"
        )
    return problems


def family_problem(family: int, version: int) -> str | None:
    """Why ``version`` cannot run over IPv``family`` (the key is ``version``), or None."""
    if family == 6 and version == 2:
        return "VRRPv2 is IPv4 only, and virtual_addresses are IPv6: use 3"
    return None


def auth_pass_problem(auth_pass: str, version: int) -> str | None:
    """Why ``auth_pass`` cannot be used with ``version``, or None."""
    if not auth_pass:
        return None
    if version != 2:
        return (
            "authentication exists only in VRRPv2 (RFC 9568 removed it): "
            "remove auth_pass or set version = 2"
        )
    size = len(auth_pass.encode())
    if size > V2_AUTH_LEN:
        return (
            f"at most {V2_AUTH_LEN} bytes, got {size} "
            "(keepalived truncates longer ones without a word; we refuse)"
        )
    return None


def peers_problems(
    peers: Sequence[IPAddress], family: int, primary_address: IPAddress | None = None
) -> list[str]:
    """Why ``peers`` cannot be the unicast peers of an IPv``family`` instance (empty: they can).

    They are also the sources adverts are accepted from, so for IPv6 they are
    link-local addresses (RFC 9568 5.1.2.1: adverts come from one; a global
    peer could never match). ``primary_address``, known only at run time,
    must not be one of them.
    """
    if _not_a_list(peers):
        return ["must be a tuple of IP addresses"]
    problems: list[str] = []
    for peer in _addresses(peers, problems, f"an address of the instance's family (IPv{family})"):
        if peer.version != family:
            problems.append(
                f"{peer} is IPv{peer.version}, but virtual_addresses are IPv{family}: "
                "peers speak the instance's family"
            )
        elif peer == primary_address:
            problems.append(f"{peer} is our own primary address")
        elif family == 6 and not peer.is_link_local:
            problems.append(
                f"{peer} is not link-local: IPv6 adverts come from the sender's link-local "
                "address (RFC 9568 5.1.2.1), so no advert could ever match it"
            )
    return problems


def router_problems(
    *,
    vrid: int,
    version: int,
    priority: int,
    advert_interval: float,
    virtual_addresses: Sequence[IPAddress],
    preempt_delay: float = 0.0,
    auth_pass: str = "",
    peers: Sequence[IPAddress] = (),
    family: int | None = None,
    primary_address: IPAddress | None = None,
) -> list[ConfigError]:
    """Every problem of one virtual router's settings, each keyed as :class:`RouterConfig`'s field.

    ``family`` defaults to that of the virtual addresses.
    """
    found: list[ConfigError] = []

    def check(key: str, problem: str | None) -> None:
        if problem:
            found.append(ConfigError(key, problem))

    check("vrid", vrid_problem(vrid))
    check("version", version_problem(version))
    check("priority", priority_problem(priority))
    vip_problems = virtual_addresses_problems(virtual_addresses)
    for problem in vip_problems:
        check("virtual_addresses", problem)
    if family is None and not vip_problems:
        family = virtual_addresses[0].version
    if family is not None and not vip_problems:
        for address in virtual_addresses:
            if address.version != family:
                check(
                    "virtual_addresses",
                    f"{address} is not of the primary address's family (IPv{family}); "
                    "one family per instance",
                )
                break
    good_version = version_problem(version) is None
    if family is not None and good_version:
        check("version", family_problem(family, version))
    if good_version:
        check("advert_interval", interval_problem(advert_interval, version))
        check("auth_pass", auth_pass_problem(auth_pass, version))
    check("preempt_delay", preempt_delay_problem(preempt_delay))
    if family is not None:
        for problem in peers_problems(peers, family, primary_address):
            check("peers", problem)
    return found
