"""What one virtual router is told at construction: validated once, then trusted.

Bad values fail here, at load, with a :class:`ConfigError` naming the field and
what is wrong, never later on the packet path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from vrrpy.codec.vrrp import V2_AUTH_LEN, V3_MAX_INTERVAL_CS, ChecksumForm, IPAddress


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
    interval_cs: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.vrid, int) or not 1 <= self.vrid <= 255:
            raise ConfigError("vrid", f"must be an integer 1..255, got {self.vrid!r}")
        if self.version not in (2, 3):
            raise ConfigError("version", f"must be 2 or 3, got {self.version!r}")
        if not isinstance(self.priority, int) or not 1 <= self.priority <= 255:
            raise ConfigError("priority", f"must be an integer 1..255, got {self.priority!r}")
        if not isinstance(self.primary_address, (IPv4Address, IPv6Address)):
            raise ConfigError("primary_address", "must be an IPv4Address or IPv6Address")
        if not self.virtual_addresses:
            raise ConfigError("virtual_addresses", "at least one address is required")
        if len(self.virtual_addresses) > 255:
            raise ConfigError("virtual_addresses", "at most 255 addresses fit in an advert")
        family = self.primary_address.version
        for addr in self.virtual_addresses:
            if not isinstance(addr, (IPv4Address, IPv6Address)) or addr.version != family:
                raise ConfigError(
                    "virtual_addresses",
                    f"{addr} is not of the primary address's family (IPv{family}); "
                    "one family per instance",
                )
        if family == 6:
            if self.version == 2:
                raise ConfigError("version", "VRRPv2 is IPv4 only; use version 3 for IPv6")
            if not self.primary_address.is_link_local:
                raise ConfigError(
                    "primary_address", "IPv6 adverts come from a link-local address (fe80::/10)"
                )
        if isinstance(self.advert_interval, bool) or not isinstance(
            self.advert_interval, (int, float)
        ):
            raise ConfigError("advert_interval", "must be a number of seconds")
        cs = round(self.advert_interval * 100)
        if self.version == 3:
            if not 1 <= cs <= V3_MAX_INTERVAL_CS or abs(cs - self.advert_interval * 100) > 1e-6:
                raise ConfigError(
                    "advert_interval",
                    f"VRRPv3 takes 0.01 .. 40.95 s in steps of 0.01, got {self.advert_interval!r}",
                )
        elif cs % 100 or not 1 <= cs // 100 <= 255:
            raise ConfigError(
                "advert_interval",
                f"VRRPv2 takes whole seconds 1..255, got {self.advert_interval!r}",
            )
        object.__setattr__(self, "interval_cs", cs)
        if self.preempt_delay < 0:
            raise ConfigError("preempt_delay", "must be >= 0 seconds")
        if self.auth_pass:
            if self.version != 2:
                raise ConfigError("auth_pass", "authentication exists only in VRRPv2")
            if len(self.auth_pass.encode()) > V2_AUTH_LEN:
                raise ConfigError(
                    "auth_pass",
                    "at most 8 bytes (keepalived truncates longer ones with a log line; we refuse)",
                )

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
