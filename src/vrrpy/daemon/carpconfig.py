"""vrrpyd's CARP keys: an ``[[instance]]`` with ``protocol = "carp"``.

```toml
[[instance]]
name = "web"
protocol = "carp"
interface = "eth0"
vhid = 7                        # CARP's virtual host id (1..255): VRRP's vrid
advbase = 1                     # seconds (1..254)
advskew = 100                   # 0..254: the interval is advbase + advskew/256 s; lower wins
demote = 0                      # OpenBSD's carpdemote to start from (0..255)
password_file = "/etc/vrrpy/web.pass"   # or password = "..."
carp_profile = "ucarp"          # "openbsd" (default), "freebsd" or "ucarp": how the key is made
preempt = true                  # default false, as in OpenBSD (net.inet.carp.preempt) and ucarp
virtual_addresses = ["192.0.2.50/24"]
```

Why a module of its own: the keys, and the rules that tie the password to the
profile, are CARP's alone; :mod:`vrrpy.daemon.config` calls :func:`read_carp`
for a CARP table and :func:`refuse_carp_keys` for a VRRP one. Every rule
reports under the file's key, and a password the chosen profile would cut or
refuse fails at load, naming the limit: OpenBSD and FreeBSD keep the first 19
bytes of a longer password without a word (``strlcpy`` into 20), ucarp
refuses 20 bytes or more and an empty one, so a file that would not
interoperate never starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from vrrpy.codec.carp_auth import CARP_KEY_LEN, PROFILES, ucarp_passfile_password

__all__ = [
    "CARP_KEYS",
    "VRRP_ONLY_KEYS",
    "CarpFields",
    "check_carp_addresses",
    "read_carp",
    "refuse_carp_keys",
]

CARP_KEYS: Final = (
    "vhid",
    "advbase",
    "advskew",
    "demote",
    "password",
    "password_file",
    "carp_profile",
    "replay_protection",
)
"""Keys that only a ``protocol = "carp"`` instance has."""
VRRP_ONLY_KEYS: Final[Mapping[str, str]] = {
    "vrid": "use vhid",
    "version": "CARP has one version",
    "priority": "CARP elects by interval: use advskew (lower wins) and advbase",
    "advert_interval": "use advbase and advskew (the interval is advbase + advskew/256 s)",
    "auth_pass": "use password or password_file (CARP always signs with HMAC-SHA1)",
    "v3_checksum": "CARP's checksum never has a pseudo-header",
    "higher_prio_send_advert": "a VRRP option of keepalived's",
    "preempt_delay": "not a CARP setting",
}
"""VRRP keys that mean nothing for CARP, with what to use instead."""
MAX_PASSWORD: Final = CARP_KEY_LEN - 1
"""19 bytes: what OpenBSD and FreeBSD keep of a password, and the most ucarp accepts."""


class Section(Protocol):
    """What :mod:`vrrpy.daemon.config`'s table reader offers (typed reads that report)."""

    table: Mapping[str, Any]

    def issue(self, key: str, message: str) -> None: ...

    def string(self, key: str, default: object = ...) -> str | None: ...

    def integer(
        self, key: str, default: object = ..., low: int | None = None, high: int | None = None
    ) -> int | None: ...

    def boolean(self, key: str, default: bool) -> bool | None: ...


@dataclass(frozen=True)
class CarpFields:
    """A CARP table's own values (the common keys are read by the caller)."""

    vhid: int
    advbase: int
    advskew: int
    demote: int
    password: str
    carp_profile: str
    replay_protection: bool


def refuse_carp_keys(section: Section) -> None:
    """A VRRP instance: every CARP-only key present is a mistake worth naming."""
    for key in CARP_KEYS:
        if key in section.table:
            section.issue(key, 'applies only to protocol = "carp"')


def read_carp(section: Section) -> CarpFields | None:
    """Read and check a CARP table's own keys; None when any is wrong (each reported)."""
    start = len(_issues(section))
    for key, instead in VRRP_ONLY_KEYS.items():
        if key in section.table:
            section.issue(key, f'not a CARP key ({instead}); remove it for protocol = "carp"')
    vhid = section.integer("vhid", low=1, high=255)
    advbase = section.integer("advbase", 1, low=1, high=254)
    advskew = section.integer("advskew", 0, low=0, high=254)
    demote = section.integer("demote", 0, low=0, high=255)
    profile = section.string("carp_profile", "openbsd")
    if profile is not None and profile not in PROFILES:
        known = ", ".join(f'"{name}"' for name in PROFILES)
        section.issue("carp_profile", f"must be one of {known}, got {profile!r}")
        profile = None
    replay = section.boolean("replay_protection", False)
    password = _password(section)
    if password is not None and profile is not None:
        _check_password(section, password, profile)
    if len(_issues(section)) > start:
        return None
    assert vhid is not None and advbase is not None and advskew is not None
    assert demote is not None and profile is not None and replay is not None
    assert password is not None
    return CarpFields(vhid, advbase, advskew, demote, password, profile, replay)


def check_carp_addresses(section: Section, profile: str, addresses: Sequence[Any]) -> None:
    """What the profile allows of the virtual addresses (ucarp: one IPv4 address)."""
    if profile != "ucarp":
        return
    if len(addresses) != 1 or addresses[0].version != 4:
        section.issue(
            "virtual_addresses",
            "the ucarp profile signs exactly one IPv4 address (ucarp's --addr); "
            f"got {len(addresses)} address(es): use one instance per address, or the "
            '"openbsd" profile',
        )


def _issues(section: Section) -> list[Any]:
    issues: list[Any] = getattr(section, "issues", [])
    return issues


def _password(section: Section) -> str | None:
    """The password, from ``password`` or ``password_file`` (exactly one of them)."""
    inline = section.string("password", None)
    path = section.string("password_file", None)
    if inline is not None and path is not None:
        section.issue("password_file", "give password or password_file, not both")
        return None
    if path is not None:
        file = Path(path)
        if not file.is_absolute():
            section.issue("password_file", f"must be an absolute path, got {path!r}")
            return None
        try:
            raw = file.read_bytes()
        except OSError as exc:
            section.issue("password_file", f"cannot read {str(file)!r}: {exc.strerror or exc}")
            return None
        try:
            # As ucarp's --passfile reads it: the first line, its newline removed.
            return ucarp_passfile_password(raw).decode("utf-8")
        except ValueError as exc:
            section.issue("password_file", f"{str(file)!r}: {exc}")
            return None
    if inline is None:
        section.issue(
            "password",
            "required: every CARP advert is signed with HMAC-SHA1 over a key made from it "
            "(give password or password_file)",
        )
        return None
    return inline


def _check_password(section: Section, password: str, profile: str) -> None:
    key = "password_file" if "password_file" in section.table else "password"
    data = password.encode("utf-8")
    if b"\0" in data:
        section.issue(key, "must not contain a NUL byte (every implementation stops at it)")
    elif not data:
        section.issue(key, "must not be empty (ucarp refuses it; OpenBSD would sign with zeros)")
    elif len(data) > MAX_PASSWORD:
        what = {
            "ucarp": "ucarp refuses a password of 20 bytes or more",
            "openbsd": "OpenBSD keeps only the first 19 bytes of a longer one, silently",
            "freebsd": "FreeBSD keeps only the first 19 bytes of a longer one, silently",
        }[profile]
        section.issue(
            key,
            f"is {len(data)} bytes; the {profile} profile carries at most {MAX_PASSWORD} "
            f"({what}): shorten it so that every peer signs with the same key",
        )
