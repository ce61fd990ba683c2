"""keepalived's ``virtual_server`` blocks as vrrpyd ``[[virtual_server]]`` tables.

vrrpyd's tables are keepalived's blocks key for key (docs/ipvs.md), with
three things the import has to decide:

* **Which instance a pool follows** (``instance``, which vrrpyd requires and
  keepalived has no notion of: its checker process keeps the virtual servers
  whatever the VRRP state). The import writes ``install = "always"``, so
  that vrrpyd too keeps the pool in every state but stopped, and names the
  instance of ``lvs_sync_daemon`` if there is one (the sync daemon follows
  it), else the instance holding the service's address, else the first.
* **Timing inherited down the tree.** keepalived's ``retry``,
  ``delay_before_retry``, ``warmup``, ``connect_timeout`` (and the real
  server's ``delay_loop``) may sit on the virtual or the real server and are
  inherited by checkers that do not set them; vrrpyd takes them on the
  checker, so they are written there.
* **Per-real-server switches** (``alpha``, ``inhibit_on_failure``) are
  per-service in vrrpyd: carried when every real server of the service says
  the same, noted otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.keepalived.complete import number as _number
from vrrpy.keepalived.context import Context
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.values import read_bool, read_int
from vrrpy.keepalived.vrrp import VrrpState

__all__ = ["convert_lvs"]

_INHERITED: Final = ("retry", "delay_before_retry", "warmup", "connect_timeout")
_CHECKERS: Final = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "MISC_CHECK")
_ALL_CHECKERS: Final = (
    *_CHECKERS,
    "SMTP_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
)
_SCHEDULERS: Final = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)


@dataclass
class _RealServer:
    """A ``real_server`` block read: its table, what its checkers inherit, its switches."""

    block: Statement
    table: dict[str, Any]
    inherited: dict[str, Any] = field(default_factory=dict)
    switches: dict[str, tuple[bool, Statement]] = field(default_factory=dict)


class _Lvs:
    def __init__(self, ctx: Context, vrrp: VrrpState) -> None:
        self.ctx = ctx
        self.notes = ctx.notes
        self.vrrp = vrrp
        self.tables: list[dict[str, Any]] = []
        self.holder = {
            vip.ip: name for name, vips in reversed(vrrp.addresses.items()) for vip in vips
        }
        syncd = vrrp.lvs_syncd
        self.sync_instance: str | None = None
        self.sync: dict[str, Any] | None = None
        if syncd is not None:
            st, interface, instance, options = syncd
            if instance not in vrrp.instances:
                self.notes.info(
                    st,
                    f"lvs_sync_daemon: no instance {instance} was carried over: the sync "
                    "daemon is not either",
                    scope="global_defs",
                )
            else:
                self.sync_instance = instance
                sync: dict[str, Any] = {"interface": interface}
                sync["syncid"] = options.pop("syncid", vrrp.instances[instance]["vrid"])
                sync.update(options)
                self.sync = sync

    def run(self) -> None:
        for statement in self.ctx.config.statements:
            if statement.keyword != "virtual_server" or statement.block is None:
                continue
            if not self.vrrp.instances:
                self.notes.dropped(
                    statement,
                    "vrrpyd's virtual servers follow a VRRP instance, and none was carried "
                    "over: not carried over",
                    scope="",
                )
                continue
            self.notes.scope = f"virtual_server {' '.join(statement.args)}"
            table = self._virtual_server(statement)
            if table is not None:
                self.tables.append(table)
            self.notes.scope = None
        if self.tables:
            self.ctx.document["virtual_server"] = self.tables
        elif self.vrrp.lvs_syncd is not None and self.sync is not None:
            self.notes.dropped(
                self.vrrp.lvs_syncd[0],
                "lvs_sync_daemon: vrrpyd runs the sync daemon for the [[virtual_server]] "
                "tables of an instance, and no virtual server was carried over",
                scope="global_defs",
            )

    # -- one virtual server ----------------------------------------------------------

    def _virtual_server(self, block: Statement) -> dict[str, Any] | None:
        notes = self.notes
        args = block.args
        table: dict[str, Any] = {}
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
        port = 0
        if not args:
            notes.info(block, "virtual_server without an address: keepalived skips it")
            return None
        if args[0] == "group":
            notes.dropped(block, "virtual_server group: vrrpyd has no virtual_server_group")
            return None
        if args[0] == "fwmark":
            mark = read_int(args[1] if len(args) > 1 else "", 0, 2**32 - 1, unsigned=True)
            if mark.value is None:
                notes.info(block, f"fwmark: {mark.why}")
                return None
            table["fwmark"] = int(mark.value)
        else:
            try:
                address = ipaddress.ip_address(args[0])
            except ValueError:
                notes.info(block, f"{args[0]} is not an IP address: keepalived skips the block")
                return None
            parsed = read_int(args[1] if len(args) > 1 else "0", 0, 65535, unsigned=True)
            if parsed.value is None:
                notes.info(block, f"port: {parsed.why}")
                return None
            port = int(parsed.value)
            table["address"] = str(address)
            table["port"] = port
        table["instance"] = self._instance_for(address)
        table["install"] = "always"
        if self.sync is not None and table["instance"] == self.vrrp.instances.get(
            self.sync_instance or "", {}
        ).get("name"):
            table["sync_daemon"] = dict(self.sync)
        inherited: dict[str, Any] = {}
        real_servers: list[_RealServer] = []
        for keyword, st in self.ctx.keywords("virtual_server", block):
            if keyword == "ip_family":
                word = self.ctx.arg(st)
                if word in ("inet", "inet6") and "fwmark" in table:
                    table["family"] = 4 if word == "inet" else 6
                elif word is not None and word not in ("inet", "inet6"):
                    notes.info(st, f"ip_family {word}: keepalived ignores it")
            elif keyword == "delay_loop":
                value = self._seconds(st)
                if value is not None:
                    table["delay_loop"] = _number(value)
            elif keyword in _INHERITED:
                value = self._timing(st, keyword)
                if value is not None:
                    inherited[keyword] = value
            elif keyword == "lb_algo":
                word = self.ctx.arg(st)
                if word is not None and word in _SCHEDULERS:
                    table["lb_algo"] = word
                elif word is not None:
                    notes.info(st, f"unknown scheduler {word}: keepalived ignores the line")
            elif keyword == "lb_kind":
                word = self.ctx.arg(st)
                if word in ("NAT", "DR", "TUN"):
                    table["lb_kind"] = word
                    if len(st.args) > 1:
                        notes.dropped(
                            st,
                            f"lb_kind {' '.join(st.args)}: the tunnel options are not carried "
                            "over (vrrpyd's TUN is ipip)",
                        )
                elif word is not None:
                    notes.info(st, f"unknown lb_kind {word}: keepalived ignores the line")
            elif keyword == "persistence_timeout":
                value_i = self._int(st, 0, 2**32 - 1)
                if value_i is not None:
                    table["persistence_timeout"] = value_i
            elif keyword == "persistence_granularity":
                word = self.ctx.arg(st)
                if word is not None:
                    table["persistence_granularity"] = int(word) if word.isdigit() else word
            elif keyword == "protocol":
                word = self.ctx.arg(st)
                if word in ("TCP", "UDP", "SCTP"):
                    if "fwmark" in table:
                        notes.info(st, "protocol on a fwmark service: it has none (not carried)")
                    else:
                        table["protocol"] = word
                elif word is not None:
                    notes.info(st, f"unknown protocol {word}: keepalived ignores the line")
            elif keyword in ("inhibit_on_failure", "alpha", "omega"):
                value_b = read_bool(st)
                if value_b is None:
                    notes.info(st, f"{keyword} {st.args[0]}: keepalived ignores the line")
                else:
                    table[keyword] = value_b
            elif keyword in ("quorum", "hysteresis"):
                value_i = self._int(st, 1 if keyword == "quorum" else 0, 2**31 - 1)
                if value_i is not None:
                    table[keyword] = value_i
            elif keyword == "sorry_server":
                sorry = self._sorry(st, port)
                if sorry is not None:
                    table["sorry_server"] = sorry
            elif keyword == "sorry_server_inhibit":
                table["sorry_server_inhibit"] = read_bool(st) is not False
            elif keyword == "virtualhost":
                word = self.ctx.arg(st)
                if word is not None:
                    inherited["virtualhost"] = word
            elif keyword == "real_server":
                rs = self._real_server(st, port)
                if rs is not None:
                    real_servers.append(rs)
        if not real_servers:
            notes.dropped(
                block,
                "no real server: vrrpyd refuses a virtual server without one (keepalived "
                "sends everything to the sorry server); not carried over",
            )
            return None
        self._per_real_server(block, table, real_servers)
        for rs in real_servers:
            for kind in _CHECKERS:
                checkers = rs.table.get(kind)
                if checkers is None:
                    continue
                for checker in checkers if isinstance(checkers, list) else [checkers]:
                    for key, value in {**inherited, **rs.inherited}.items():
                        if key == "virtualhost" and kind not in ("HTTP_GET", "SSL_GET"):
                            continue
                        if key == "connect_timeout" and kind == "MISC_CHECK":
                            continue
                        checker.setdefault(key, value)
        table["real_server"] = [rs.table for rs in real_servers]
        return table

    def _instance_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
        instances = self.vrrp.instances
        if self.sync_instance is not None:
            return str(instances[self.sync_instance]["name"])
        if address is not None and address in self.holder:
            return str(instances[self.holder[address]]["name"])
        first = next(iter(instances.values()), None)
        if first is None:
            return ""
        return str(first["name"])

    def _sorry(self, st: Statement, port: int) -> str | None:
        if not st.args:
            self.notes.info(st, "sorry_server without an address: ignored")
            return None
        try:
            address = ipaddress.ip_address(st.args[0])
        except ValueError:
            self.notes.info(st, f"{st.args[0]} is not an IP address: keepalived ignores it")
            return None
        sorry_port = st.args[1] if len(st.args) > 1 else str(port)
        if not sorry_port.isdigit():
            self.notes.info(st, f"sorry_server port {sorry_port}: keepalived ignores the line")
            return None
        return f"{address} {int(sorry_port)}"

    # -- real servers ----------------------------------------------------------------

    def _real_server(self, block: Statement, service_port: int) -> _RealServer | None:
        notes = self.notes
        if not block.args:
            notes.info(block, "real_server without an address: keepalived skips it")
            return None
        try:
            address = ipaddress.ip_address(block.args[0])
        except ValueError:
            notes.info(block, f"{block.args[0]} is not an IP address: keepalived skips it")
            return None
        table: dict[str, Any] = {"address": str(address)}
        if len(block.args) > 1:
            parsed = read_int(block.args[1], 0, 65535, unsigned=True)
            if parsed.value is None:
                notes.info(block, f"port: {parsed.why}")
                return None
            table["port"] = int(parsed.value)
        else:
            table["port"] = service_port
        rs = _RealServer(block, table)
        inherited, switches = rs.inherited, rs.switches
        for keyword, st in self.ctx.keywords("real_server", block):
            if keyword == "weight":
                value = self._int(st, 0, 2**31 - 1)
                if value is not None:
                    table["weight"] = value
            elif keyword in ("uthreshold", "lthreshold"):
                value = self._int(st, 0, 2**32 - 1)
                if value is not None:
                    table[keyword] = value
            elif keyword in _INHERITED:
                value_t = self._timing(st, keyword)
                if value_t is not None:
                    inherited[keyword] = value_t
            elif keyword == "delay_loop":
                value_s = self._seconds(st)
                if value_s is not None:
                    inherited["delay_loop"] = _number(value_s)
            elif keyword == "virtualhost":
                word = self.ctx.arg(st)
                if word is not None:
                    inherited["virtualhost"] = word
            elif keyword in ("alpha", "inhibit_on_failure"):
                value_b = read_bool(st)
                if value_b is not None:
                    switches[keyword] = (value_b, st)
            elif keyword in _CHECKERS:
                checker = self._checker(keyword, st)
                if checker is not None:
                    existing = table.get(keyword)
                    if existing is None:
                        table[keyword] = checker
                    elif isinstance(existing, list):
                        existing.append(checker)
                    else:
                        table[keyword] = [existing, checker]
        if not any(kind in table for kind in _CHECKERS):
            checked = [st.keyword for st in block.block or () if st.keyword in _ALL_CHECKERS]
            if checked:
                notes.changed(
                    block,
                    f"{address}: none of its checkers ({', '.join(checked)}) was carried over: "
                    "vrrpyd takes it for always up",
                )
        return rs

    def _per_real_server(
        self, block: Statement, table: dict[str, Any], real_servers: list[_RealServer]
    ) -> None:
        """``alpha`` / ``inhibit_on_failure`` per real server: per service in vrrpyd."""
        for key in ("alpha", "inhibit_on_failure"):
            service = bool(table.get(key, False))
            values = [rs.switches[key][0] if key in rs.switches else service for rs in real_servers]
            if all(value == service for value in values):
                continue
            if len(set(values)) == 1:
                table[key] = values[0]
                continue
            for rs in real_servers:
                switch = rs.switches.get(key)
                if switch is not None and switch[0] != service:
                    self.notes.dropped(
                        switch[1],
                        f"{key} on real server {rs.block.args[0]}: vrrpyd sets it per virtual "
                        "server, and the other real servers here differ",
                    )
        del block

    # -- checkers --------------------------------------------------------------------

    def _checker(self, kind: str, block: Statement) -> dict[str, Any] | None:
        notes = self.notes
        table: dict[str, Any] = {}
        urls: list[dict[str, Any]] = []
        for keyword, st in self.ctx.keywords(kind, block):
            if keyword in ("connect_ip", "bindto"):
                word = self.ctx.arg(st)
                if word is not None:
                    table[keyword] = word
            elif keyword == "connect_port":
                value = self._int(st, 1, 65535)
                if value is not None:
                    table["connect_port"] = value
            elif keyword in _INHERITED:
                value_t = self._timing(st, keyword)
                if value_t is not None:
                    table[keyword] = value_t
            elif keyword == "delay_loop":
                value_s = self._seconds(st)
                if value_s is not None:
                    table["delay_loop"] = _number(value_s)
            elif keyword == "alpha":
                value_b = read_bool(st)
                if value_b is not None:
                    table["alpha"] = value_b
            elif keyword == "virtualhost":
                word = self.ctx.arg(st)
                if word is not None:
                    table["virtualhost"] = word
            elif keyword == "enable_sni":
                if kind == "SSL_GET":
                    table["enable_sni"] = read_bool(st) is not False
                else:
                    notes.info(st, "enable_sni on HTTP_GET: no TLS, nothing to do")
            elif keyword == "url":
                url = self._url(st)
                if url is not None:
                    urls.append(url)
            elif keyword in ("type", "name"):
                word = self.ctx.arg(st)
                if word is not None:
                    table[keyword] = word
            elif keyword == "misc_path":
                cmd = self.ctx.command(st)
                if cmd is not None:
                    table["misc_path"] = cmd.line
            elif keyword == "misc_timeout":
                value = self._int(st, 0, 2**32 - 1)
                if value:
                    table["misc_timeout"] = value
            elif keyword == "misc_dynamic":
                table["misc_dynamic"] = True
            elif keyword == "user":
                user = self.ctx.arg(st)
                if user is not None:
                    table["user"] = user
                    if len(st.args) > 1:
                        table["group"] = st.args[1]
        if kind in ("HTTP_GET", "SSL_GET"):
            if not urls:
                notes.info(block, f"{kind} without a url: keepalived checks nothing with it")
                return None
            table["url"] = urls
        if kind == "MISC_CHECK":
            if "misc_path" not in table:
                notes.info(block, "MISC_CHECK without misc_path: keepalived ignores it")
                return None
            if "user" not in table and self.vrrp.script_user is not None:
                user, group = self.vrrp.script_user
                table["user"] = user
                if group is not None:
                    table["group"] = group
        return table

    def _url(self, block: Statement) -> dict[str, Any] | None:
        url: dict[str, Any] = {}
        for keyword, st in self.ctx.keywords("url", block):
            word = self.ctx.arg(st)
            if word is None:
                continue
            if keyword == "status_code":
                codes = " ".join(st.args)
                url["status_code"] = int(codes) if codes.isdigit() else codes
                continue
            url[keyword] = word
            if len(st.args) > 1:
                self.notes.info(
                    st,
                    f"{keyword} takes one word: keepalived ignores {' '.join(st.args[1:])!r} "
                    "(braces end a line, nothing else does: one setting per line)",
                )
        if "path" not in url:
            self.notes.info(block, "url without a path: keepalived ignores it")
            return None
        return url

    # -- numbers ---------------------------------------------------------------------

    def _int(self, st: Statement, low: int, high: int) -> int | None:
        return self.ctx.int_arg(st, low, high)

    def _seconds(self, st: Statement) -> float | None:
        return self.ctx.seconds_arg(st, 0.0, 2**32 / 1e6)

    def _timing(self, st: Statement, keyword: str) -> int | float | None:
        if keyword == "retry":
            return self._int(st, 0, 2**31 - 1)
        value = self._seconds(st)
        if value is None:
            return None
        if keyword == "warmup" and value == 0:
            return 0
        return _number(value)


def convert_lvs(ctx: Context, vrrp: VrrpState) -> None:
    """Convert the ``virtual_server`` blocks of ``ctx.config`` into ``ctx.document``."""
    _Lvs(ctx, vrrp).run()
