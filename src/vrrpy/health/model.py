"""Real-server health checks: the frozen specs, with keepalived 2.x's key names and defaults.

A spec says *what* to check and *how often*; nothing here opens a socket.
:mod:`vrrpy.health.state` turns results into up/down (sans-IO),
:mod:`vrrpy.health.checks` performs one check on asyncio,
:mod:`vrrpy.health.runner` schedules thousands of them and
:mod:`vrrpy.health.agent` runs that in a child process.

Facts were read in keepalived's source (acassen/keepalived at 9cbce3e, 2.4.x:
``check/check_api.c``, ``check_data.c``, ``check_tcp.c``, ``check_http.c``,
``check_ssl.c``, ``check_dns.c``, ``check_misc.c``, ``keepalived.conf(5)``) and
ldirectord's (ClusterLabs/resource-agents ``ldirectord/ldirectord.in``). Every
check belongs to one real server, named by ``server``: an opaque key chosen
by the caller (the IPVS side uses its own real-server key), and every key
that keepalived puts on a checker is a field here, under keepalived's name:

=====================  ==========================================  ==========================
field                  keepalived                                  default
=====================  ==========================================  ==========================
``delay_loop``         ``delay_loop``                              60 s
``connect_timeout``    ``connect_timeout``                         5 s
``retry``              ``retry`` (``nb_get_retry`` before 2.0)     1; DNS 3; MISC 0
``delay_before_retry`` ``delay_before_retry``                      1 s; HTTP 3 s; DNS ``delay_loop``
``warmup``             ``warmup``                                  ``delay_loop``
``alpha``              ``alpha``                                   false
``rise``               (none; vrrpy, HAProxy's ``rise``)           1
=====================  ==========================================  ==========================

``retry`` is keepalived's "fall": a server that is up goes down after
``retry + 1`` failures in a row (the first, then ``retry`` retries spaced by
``delay_before_retry``); ldirectord's ``failurecount`` is that count
(``retry = failurecount - 1``), and ``fall`` is accepted for it too.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from ipaddress import ip_address
from typing import Any, Final

__all__ = [
    "DNS_RCODES",
    "DNS_TYPES",
    "CheckKind",
    "CheckSpec",
    "DnsCheck",
    "HealthConfigError",
    "HttpCheck",
    "MiscCheck",
    "TcpCheck",
    "Timing",
    "parse_status_codes",
    "spec_from_json",
    "spec_to_json",
]


class HealthConfigError(ValueError):
    """A check's settings were refused; the message names the server and the key."""


class CheckKind(str, enum.Enum):
    """The kinds of check; values are the agent protocol's (keepalived's names beside)."""

    TCP = "tcp"  # TCP_CHECK
    HTTP = "http"  # HTTP_GET, and SSL_GET with tls = true
    DNS = "dns"  # DNS_CHECK
    MISC = "misc"  # MISC_CHECK


KEEPALIVED_KINDS: Final[Mapping[str, tuple[CheckKind, bool]]] = {
    "TCP_CHECK": (CheckKind.TCP, False),
    "HTTP_GET": (CheckKind.HTTP, False),
    "SSL_GET": (CheckKind.HTTP, True),
    "DNS_CHECK": (CheckKind.DNS, False),
    "MISC_CHECK": (CheckKind.MISC, False),
}
"""keepalived's checker block names, accepted as ``kind`` (SSL_GET is HTTP with ``tls``)."""

DNS_TYPES: Final[Mapping[str, int]] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
}
"""keepalived's DNS_CHECK ``type`` list (A|NS|CNAME|SOA|MX|TXT|AAAA), plus PTR (ldirectord)."""

DNS_RCODES: Final[Mapping[str, int]] = {
    "NOERROR": 0,
    "FORMERR": 1,
    "SERVFAIL": 2,
    "NXDOMAIN": 3,
    "NOTIMP": 4,
    "REFUSED": 5,
}

_DEFAULT_RETRY: Final = {CheckKind.TCP: 1, CheckKind.HTTP: 1, CheckKind.DNS: 3, CheckKind.MISC: 0}
"""keepalived: ``default_retry`` is 1 (``queue_checker``), 3 for DNS_CHECK, 0 for MISC_CHECK."""
_DEFAULT_DELAY_BEFORE_RETRY: Final[Mapping[CheckKind, float | None]] = {
    CheckKind.TCP: 1.0,
    CheckKind.HTTP: 3.0,
    CheckKind.DNS: None,  # None: the delay_loop
    CheckKind.MISC: 1.0,
}
"""keepalived: 1 s (``queue_checker``), 3 s for HTTP_GET / SSL_GET, delay_loop for DNS_CHECK."""
DEFAULT_DELAY_LOOP: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_MAX_BODY: Final = 1 << 20
"""Bytes of an HTTP body read at most (for ``digest`` / ``receive``); a larger body fails."""


@dataclass(frozen=True)
class Timing:
    """The resolved timing of one check: what :class:`vrrpy.health.state.CheckerState` runs on.

    ``timeout`` bounds one attempt (``connect_timeout``; MISC: ``misc_timeout``,
    whose keepalived default is the ``delay_loop``).
    """

    delay_loop: float
    timeout: float
    retry: int
    delay_before_retry: float
    warmup: float
    alpha: bool = False
    rise: int = 1

    def __post_init__(self) -> None:
        if self.delay_loop <= 0 or self.timeout <= 0 or self.delay_before_retry <= 0:
            raise HealthConfigError("delay_loop, timeouts and delay_before_retry must be > 0")
        if self.warmup < 0 or self.retry < 0 or self.rise < 1:
            raise HealthConfigError("warmup and retry must be >= 0, rise >= 1")


def _positive(value: float | None, key: str, where: str, *, zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HealthConfigError(f"{where}: {key} must be a number, not {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise HealthConfigError(f"{where}: {key} must be {'>= 0' if zero else '> 0'}")


def _address(value: str | None, key: str, where: str) -> None:
    if value is None:
        return
    try:
        ip_address(value)
    except ValueError:
        raise HealthConfigError(f"{where}: {key} {value!r} is not an IP address") from None


def _port(value: int, key: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise HealthConfigError(f"{where}: {key} must be a port 1..65535, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class _Check:
    """The keys every checker has (keepalived's generic checker options)."""

    server: str
    """The real server this check belongs to: an opaque key (the health map's key)."""
    name: str | None = None
    """A label for logs and the status; by default one is made from the kind and target."""
    delay_loop: float = DEFAULT_DELAY_LOOP
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    alpha: bool = False
    rise: int = 1

    kind: CheckKind = field(init=False, default=CheckKind.TCP)

    @property
    def where(self) -> str:
        return f"health {self.server}"

    def __post_init__(self) -> None:
        if not isinstance(self.server, str) or not self.server:
            raise HealthConfigError("health: every check needs a server key")
        where = self.where
        _positive(self.delay_loop, "delay_loop", where)
        _positive(self.connect_timeout, "connect_timeout", where)
        _positive(self.delay_before_retry, "delay_before_retry", where)
        _positive(self.warmup, "warmup", where, zero=True)
        for key, value, low in (("retry", self.retry, 0), ("rise", self.rise, 1)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise HealthConfigError(f"{where}: {key} must be an integer >= {low}")

    @property
    def label(self) -> str:
        return self.name or self.describe()

    def describe(self) -> str:
        raise NotImplementedError

    def attempt_timeout(self) -> float:
        return self.connect_timeout

    def timing(self) -> Timing:
        """keepalived's defaults resolved (``check_data.c``: checker, else real server, else
        the checker type's default)."""
        dbr = self.delay_before_retry
        if dbr is None:
            dbr = _DEFAULT_DELAY_BEFORE_RETRY[self.kind] or self.delay_loop
        return Timing(
            delay_loop=self.delay_loop,
            timeout=self.attempt_timeout(),
            retry=_DEFAULT_RETRY[self.kind] if self.retry is None else self.retry,
            delay_before_retry=dbr,
            warmup=self.delay_loop if self.warmup is None else self.warmup,
            alpha=self.alpha,
            rise=self.rise,
        )


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, kw_only=True)
class TcpCheck(_Check):
    """keepalived ``TCP_CHECK`` (ldirectord ``checktype = connect``): a TCP connect succeeds.

    ``connect_ip`` / ``connect_port``: where to connect (keepalived's default is the
    real server's address, which the caller fills in); ``bindto``: the source address.
    """

    connect_ip: str
    connect_port: int
    bindto: str | None = None
    kind: CheckKind = field(init=False, default=CheckKind.TCP)

    def __post_init__(self) -> None:
        super().__post_init__()
        _address(self.connect_ip, "connect_ip", self.where)
        _port(self.connect_port, "connect_port", self.where)
        _address(self.bindto, "bindto", self.where)
        if self.bindto is not None and (":" in self.bindto) != (":" in self.connect_ip):
            raise HealthConfigError(f"{self.where}: bindto and connect_ip differ in family")

    def describe(self) -> str:
        return f"TCP_CHECK {_hostport(self.connect_ip, self.connect_port)}"


def parse_status_codes(value: object, where: str = "health") -> tuple[tuple[int, int], ...]:
    """keepalived's ``status_code``: ``200``, ``"200-299 503"``, or a list of either; as ranges."""
    if isinstance(value, int) and not isinstance(value, bool):
        items: Iterable[object] = [value]
    elif isinstance(value, str):
        items = value.split()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise HealthConfigError(f"{where}: status_code must be codes or ranges, not {value!r}")
    out: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            low, high = item
        elif isinstance(item, int) and not isinstance(item, bool):
            low = high = item
        elif isinstance(item, str) and re.fullmatch(r"\d{3}(-\d{3})?", item):
            low, _, rest = item.partition("-")
            low, high = int(low), int(rest or low)
        else:
            raise HealthConfigError(f"{where}: status_code {item!r} is not a code or a range")
        if not (isinstance(low, int) and isinstance(high, int) and 100 <= low <= high <= 599):
            raise HealthConfigError(f"{where}: status_code {item!r} outside 100..599")
        out.append((low, high))
    if not out:
        raise HealthConfigError(f"{where}: status_code is empty")
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class HttpCheck(_Check):
    """keepalived ``HTTP_GET`` / ``SSL_GET`` (``tls``); ldirectord ``service = http / https``.

    One ``url`` per check (keepalived allows several in one checker, checked one
    after the other: give one check per URL; the server is up when all are).
    The check passes when the status is in ``status_code`` (default 200-299),
    the body's MD5 equals ``digest`` (keepalived's genhash: the body after the
    headers, at most Content-Length bytes, chunked framing removed) if given,
    and the body contains ``receive`` (ldirectord's, as a plain substring) if
    given. ``virtualhost`` is the Host header (default ``ip:port``, as
    keepalived). TLS: SNI only with ``sni`` (keepalived's ``enable_sni``), the
    name ``sni_name``, else ``virtualhost``; the certificate is not verified
    unless ``verify`` (keepalived never checks it: it loads ``ca`` but ignores
    the result), against ``ca_file`` or the system's store.
    """

    connect_ip: str
    connect_port: int
    bindto: str | None = None
    path: str = "/"
    status_code: tuple[tuple[int, int], ...] = ((200, 299),)
    digest: str | None = None
    receive: str | None = None
    virtualhost: str | None = None
    tls: bool = False
    sni: bool = False
    sni_name: str | None = None
    verify: bool = False
    ca_file: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    kind: CheckKind = field(init=False, default=CheckKind.HTTP)

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.where
        _address(self.connect_ip, "connect_ip", where)
        _port(self.connect_port, "connect_port", where)
        _address(self.bindto, "bindto", where)
        if not self.path.startswith("/") or any(c in self.path for c in " \r\n\t"):
            raise HealthConfigError(f"{where}: path {self.path!r} must start with / (no spaces)")
        object.__setattr__(self, "status_code", parse_status_codes(self.status_code, where))
        if self.digest is not None:
            if not re.fullmatch(r"[0-9a-fA-F]{32}", self.digest):
                raise HealthConfigError(f"{where}: digest must be 32 hex digits (an MD5)")
            object.__setattr__(self, "digest", self.digest.lower())
        if self.receive is not None and not self.receive:
            raise HealthConfigError(f"{where}: receive must not be empty")
        for key in ("virtualhost", "sni_name"):
            value = getattr(self, key)
            if value is not None and (not value or any(c in value for c in " \r\n\t/")):
                raise HealthConfigError(f"{where}: {key} {value!r} is not a host name")
        if (self.sni or self.sni_name or self.verify or self.ca_file) and not self.tls:
            raise HealthConfigError(f"{where}: sni, sni_name, verify and ca_file need tls")
        if self.max_body < 0:
            raise HealthConfigError(f"{where}: max_body must be >= 0")

    @property
    def host_header(self) -> str:
        """keepalived's Host: the virtualhost, else ``ip:port`` (``[ip]:port`` for IPv6)."""
        return self.virtualhost or _hostport(self.connect_ip, self.connect_port)

    @property
    def server_hostname(self) -> str | None:
        """The SNI name sent, or None (keepalived sends none without ``enable_sni``)."""
        if not self.sni:
            return None
        return self.sni_name or self.virtualhost

    @property
    def needs_body(self) -> bool:
        return self.digest is not None or self.receive is not None

    def describe(self) -> str:
        word = "SSL_GET" if self.tls else "HTTP_GET"
        return f"{word} {_hostport(self.connect_ip, self.connect_port)}{self.path}"


@dataclass(frozen=True, kw_only=True)
class DnsCheck(_Check):
    """keepalived ``DNS_CHECK`` (UDP); ldirectord ``service = dns``.

    A query for ``query_name`` / ``query_type`` (keepalived's ``name``, default
    ``.``, and ``type``, default SOA) with recursion desired; the check passes
    when an answer with the query's id comes back with ``rcode`` (default 0,
    NOERROR: keepalived's only test) and, if ``answer`` is given, one record of
    the query's type equals it (ldirectord's ``receive`` for A and PTR
    records): an address for A / AAAA, a name for NS / CNAME / PTR / MX, the
    text for TXT.
    """

    connect_ip: str
    connect_port: int = 53
    bindto: str | None = None
    query_name: str = "."
    query_type: str = "SOA"
    rcode: int = 0
    answer: str | None = None
    kind: CheckKind = field(init=False, default=CheckKind.DNS)

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.where
        _address(self.connect_ip, "connect_ip", where)
        _port(self.connect_port, "connect_port", where)
        _address(self.bindto, "bindto", where)
        qtype = self.query_type.upper() if isinstance(self.query_type, str) else ""
        if qtype not in DNS_TYPES:
            raise HealthConfigError(
                f"{where}: query_type {self.query_type!r} not one of {', '.join(DNS_TYPES)}"
            )
        object.__setattr__(self, "query_type", qtype)
        labels = self.query_name.rstrip(".").split(".")
        if self.query_name != "." and any(not 0 < len(x.encode()) < 64 for x in labels):
            raise HealthConfigError(f"{where}: query_name {self.query_name!r} is not a DNS name")
        if len(self.query_name) > 253:
            raise HealthConfigError(f"{where}: query_name too long")
        if not isinstance(self.rcode, int) or not 0 <= self.rcode <= 15:
            raise HealthConfigError(f"{where}: rcode must be 0..15")
        if self.answer is not None and qtype == "SOA":
            raise HealthConfigError(f"{where}: answer cannot be compared for SOA")

    @property
    def qtype(self) -> int:
        return DNS_TYPES[self.query_type]

    def describe(self) -> str:
        return (
            f"DNS_CHECK {_hostport(self.connect_ip, self.connect_port)}"
            f" {self.query_name} {self.query_type}"
        )


@dataclass(frozen=True, kw_only=True)
class MiscCheck(_Check):
    """keepalived ``MISC_CHECK`` (ldirectord ``checktype = external``): run a command.

    ``command`` is keepalived's ``misc_path`` (split with shell-like quoting, run
    without a shell unless ``shell``); ``timeout`` its ``misc_timeout`` (default:
    the ``delay_loop``); at the timeout its process group is killed and the run
    fails. Exit 0 passes. With ``dynamic`` (``misc_dynamic``), exit 1 fails and
    2..255 pass with the server's weight set to ``status - 2``; without it, any
    non-zero status fails. ``connect_timeout`` is not used (as keepalived).
    ``user`` / ``group``: keepalived's ``user USERNAME [GROUPNAME]``.
    """

    command: str
    timeout: float | None = None
    dynamic: bool = False
    user: str | None = None
    group: str | None = None
    shell: bool = False
    kind: CheckKind = field(init=False, default=CheckKind.MISC)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.command, str) or not self.command.strip():
            raise HealthConfigError(f"{self.where}: command (misc_path) is required")
        _positive(self.timeout, "timeout", self.where)
        for key in ("dynamic", "shell"):
            if not isinstance(getattr(self, key), bool):  # "yes" would be true
                raise HealthConfigError(f"{self.where}: {key} must be true or false")
        if self.group is not None and self.user is None:
            raise HealthConfigError(f"{self.where}: group without user")

    def attempt_timeout(self) -> float:
        return self.delay_loop if self.timeout is None else self.timeout

    def describe(self) -> str:
        return f"MISC_CHECK {self.command}"


CheckSpec = TcpCheck | HttpCheck | DnsCheck | MiscCheck

_CLASSES: Final[Mapping[CheckKind, type[_Check]]] = {
    CheckKind.TCP: TcpCheck,
    CheckKind.HTTP: HttpCheck,
    CheckKind.DNS: DnsCheck,
    CheckKind.MISC: MiscCheck,
}

_ALIASES: Final[Mapping[str, str]] = {
    "nb_get_retry": "retry",  # keepalived before 2.0 (HTTP_GET / SSL_GET)
    "misc_path": "command",
    "misc_timeout": "timeout",
    "misc_dynamic": "dynamic",
    "enable_sni": "sni",
    "url": "path",
}
"""keepalived's names that differ from ours, accepted in a JSON spec."""

_FALL_KEYS: Final = ("fall", "failurecount")
"""Failures in a row that bring an up server down (ldirectord's ``failurecount``):
``retry = fall - 1``."""


def spec_from_json(doc: Mapping[str, Any]) -> CheckSpec:
    """One check from a JSON object, checked; raises :class:`HealthConfigError` naming the key.

    ``kind`` is ``tcp``, ``http``, ``dns``, ``misc`` or keepalived's block name
    (``TCP_CHECK``, ``HTTP_GET``, ``SSL_GET``, ``DNS_CHECK``, ``MISC_CHECK``);
    the other keys are the fields of the spec classes, or keepalived's spelling
    (``nb_get_retry``, ``misc_path``, ``misc_timeout``, ``misc_dynamic``,
    ``enable_sni``), or ``fall`` / ``failurecount`` for ``retry + 1``.
    Unknown keys are refused.
    """
    if not isinstance(doc, Mapping):
        raise HealthConfigError(f"health: a check must be an object, not {doc!r}")
    server = doc.get("server")
    where = f"health {server}"
    raw_kind = doc.get("kind")
    tls = False
    if isinstance(raw_kind, str) and raw_kind in KEEPALIVED_KINDS:
        kind, tls = KEEPALIVED_KINDS[raw_kind]
    else:
        try:
            kind = CheckKind(raw_kind)
        except ValueError:
            raise HealthConfigError(f"{where}: unknown check kind {raw_kind!r}") from None
    cls = _CLASSES[kind]
    allowed = {f.name for f in fields(cls) if f.init}
    values: dict[str, Any] = {"tls": True} if tls else {}
    for key, value in doc.items():
        if key == "kind":
            continue
        target = _ALIASES.get(key, key)
        if key in _FALL_KEYS:
            if "retry" in values or any(k in doc for k in ("retry", "nb_get_retry")):
                raise HealthConfigError(f"{where}: give retry or {key}, not both")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HealthConfigError(f"{where}: {key} must be an integer >= 1")
            values["retry"] = value - 1
            continue
        if target not in allowed:
            raise HealthConfigError(f"{where}: unknown key {key!r} for a {kind.value} check")
        if target in values:
            raise HealthConfigError(f"{where}: {target} given twice")
        values[target] = value
    if kind is CheckKind.HTTP and "status_code" in values:
        values["status_code"] = parse_status_codes(values["status_code"], where)
    if kind is CheckKind.DNS and isinstance(values.get("rcode"), str):
        name = values["rcode"].upper()
        if name not in DNS_RCODES:
            raise HealthConfigError(f"{where}: rcode {values['rcode']!r} unknown")
        values["rcode"] = DNS_RCODES[name]
    try:
        spec = cls(**values)
    except TypeError as exc:
        raise HealthConfigError(f"{where}: {exc}") from None
    assert isinstance(spec, (TcpCheck, HttpCheck, DnsCheck, MiscCheck))
    return spec


def spec_to_json(spec: CheckSpec) -> dict[str, Any]:
    """The JSON object :func:`spec_from_json` reads back to an equal spec (None fields left out)."""
    doc = asdict(spec)
    doc["kind"] = spec.kind.value
    if isinstance(spec, HttpCheck):
        doc["status_code"] = [list(r) for r in spec.status_code]
    return {k: v for k, v in doc.items() if v is not None}
