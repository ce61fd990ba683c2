"""``show vrrp`` as FRR shapes it: the JSON vrrpctl gets, and the text it prints.

FRR's ``vrrpd`` is the one other VRRP implementation on Linux with a
documented show command and JSON (``show vrrp [json]``, ``show vrrp
summary``; ``vrrpd/vrrp_vty.c``). Its fields are used where they fit, with
FRR's names: ``vrid``, ``version``, ``preemptMode``, ``acceptMode``,
``interface``, ``advertisementInterval`` (ms), and per address family
(``v4`` or ``v6``) ``interface`` (the VMAC's), ``vmac``, ``primaryAddress``,
``status``, ``effectivePriority``, ``masterAdverInterval``, ``skewTime``,
``masterDownInterval`` (ms), ``stats`` (``adverTx``, ``adverRx``, ``garpTx``
or ``neighborAdverTx``, ``transitions``) and ``addresses``. An FRR router
has both families in one object; a vrrpy instance is one family, so the
other family's object is absent. What FRR has no field for (FAULT and its
reasons, CARP, the Master heard, backends, tracking, ...) is under
``"vrrpy"``: the instance's whole status, as the state file has it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["STATUS_NAMES", "frr_json", "render_detail", "render_summary"]

STATUS_NAMES: Final[Mapping[str, str]] = {
    "INIT": "Initialize",
    "BACKUP": "Backup",
    "MASTER": "Master",
    "FAULT": "Fault",
}
"""vrrpy's states in FRR's words (FRR has no FAULT: vrrpy's own)."""


def _ms(seconds: object) -> int | None:
    if isinstance(seconds, (int, float)):
        return round(seconds * 1000)
    return None


def frr_json(runner: Any, status: Mapping[str, Any]) -> dict[str, Any]:
    """One instance as FRR's ``show vrrp json`` has a virtual router (see the module).

    Reads ``runner.spec`` and ``runner.router`` (any thread: plain attribute
    reads) for what the status lacks.
    """
    spec = getattr(runner, "spec", None)
    router = getattr(runner, "router", None)
    family = getattr(runner, "family", None) or getattr(spec, "family", 4)
    state = str(status.get("state", "INIT"))
    counters: Mapping[str, Any] = status.get("counters") or {}
    run: Mapping[str, Any] = status.get("runtime") or {}
    attachment = getattr(runner, "attachment", None)
    vmac_if = getattr(attachment, "addr_ifname", "") if getattr(spec, "use_vmac", False) else ""
    master_cs = getattr(router, "master_adver_interval_cs", None)
    skew: Any = None
    down: Any = None
    if router is not None:
        try:
            down = router.master_down_interval
            skew = getattr(router, "skew_time", None)
        except Exception:  # a core between two states: leave them out
            down = skew = None
    primary = getattr(router, "_primary", None) or getattr(
        getattr(router, "config", None), "primary_address", None
    )
    per_family: dict[str, Any] = {
        "interface": vmac_if,
        "vmac": getattr(attachment, "mac", "") if vmac_if else "",
        "primaryAddress": str(primary) if primary is not None else "",
        "status": STATUS_NAMES.get(state, state.title()),
        "effectivePriority": status.get("effective_priority"),
        "masterAdverInterval": round(master_cs * 10) if isinstance(master_cs, int) else None,
        "skewTime": _ms(skew),
        "masterDownInterval": _ms(down),
        "stats": {
            "adverTx": counters.get("adverts_sent", 0),
            "adverRx": counters.get("adverts_received", 0),
            ("garpTx" if family == 4 else "neighborAdverTx"): run.get("announcements_sent", 0),
            "transitions": counters.get("transitions", 0),
        },
        "addresses": [str(a).split("/", 1)[0] for a in status.get("virtual_addresses") or ()],
    }
    return {
        "name": getattr(spec, "name", ""),
        "vrid": status.get("vrid"),
        "version": getattr(spec, "version", None),
        "protocol": status.get("protocol", "vrrp"),
        "preemptMode": getattr(spec, "preempt", None),
        "acceptMode": getattr(spec, "accept", None),
        "interface": status.get("interface"),
        "advertisementInterval": _ms(getattr(spec, "advert_interval", None)),
        "priority": status.get("priority"),
        "v4" if family == 4 else "v6": per_family,
        "vrrpy": dict(status),
    }


def _family(doc: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    if "v6" in doc:
        return "v6", doc["v6"]
    return "v4", doc.get("v4") or {}


def render_summary(instances: Mapping[str, Mapping[str, Any]]) -> str:
    """``show vrrp summary``: one line per instance, sorted by interface then VRID, as FRR.

    FRR's columns are Interface, VRID, Priority, IPv4, IPv6 (address counts),
    State (v4), State (v6); one vrrpy instance is one family, so its name and
    family take the place of the second pair, and the Master it hears is added.
    """
    header = ("Instance", "Interface", "VRID", "Family", "Priority", "Addresses", "State", "Master")
    rows: list[tuple[str, ...]] = []
    ordered = sorted(
        instances.items(), key=lambda kv: (str(kv[1].get("interface")), kv[1].get("vrid") or 0)
    )
    for name, doc in ordered:
        fam, sub = _family(doc)
        vrrpy = doc.get("vrrpy") or {}
        base, effective = doc.get("priority"), sub.get("effectivePriority")
        priority = f"{base}" if base == effective else f"{base}/{effective}"
        proto = "CARP " if doc.get("protocol") == "carp" else ""
        rows.append(
            (
                name,
                str(doc.get("interface") or ""),
                str(doc.get("vrid") or ""),
                proto + ("IPv4" if fam == "v4" else "IPv6"),
                priority,
                str(len(sub.get("addresses") or ())),
                str(sub.get("status", "")),
                str(vrrpy.get("master_address") or "-"),
            )
        )
    return _table(header, rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def render_detail(name: str, doc: Mapping[str, Any]) -> str:
    """``show vrrp`` for one instance: FRR's rows, then vrrpy's own (faults, Master heard,
    last transition, backends)."""
    fam, sub = _family(doc)
    v = f"({fam})"
    stats: Mapping[str, Any] = sub.get("stats") or {}
    vrrpy: Mapping[str, Any] = doc.get("vrrpy") or {}
    counters: Mapping[str, Any] = vrrpy.get("counters") or {}

    def ms(value: object) -> str:
        return f"{value} ms" if value is not None else "-"

    def yes(value: object) -> str:
        return "-" if value is None else ("Yes" if value else "No")

    rows: list[tuple[str, str]] = [
        ("Instance", name),
        ("Virtual Router ID", str(doc.get("vrid"))),
        ("Protocol", str(doc.get("protocol", "vrrp")).upper()),
        ("Protocol Version", str(doc.get("version"))),
        ("Interface", str(doc.get("interface"))),
        (f"VRRP interface {v}", sub.get("interface") or "None"),
        (f"Primary IP {v}", str(sub.get("primaryAddress") or "")),
        (f"Virtual MAC {v}", str(sub.get("vmac") or "-")),
        (f"Status {v}", str(sub.get("status"))),
        ("Priority", str(doc.get("priority"))),
        (f"Effective Priority {v}", str(sub.get("effectivePriority"))),
        ("Preempt Mode", yes(doc.get("preemptMode"))),
        ("Accept Mode", yes(doc.get("acceptMode"))),
        ("Advertisement Interval", ms(doc.get("advertisementInterval"))),
        (f"Master Advertisement Interval {v}", ms(sub.get("masterAdverInterval"))),
        (f"Advertisements Tx {v}", str(stats.get("adverTx", 0))),
        (f"Advertisements Rx {v}", str(stats.get("adverRx", 0))),
    ]
    if fam == "v4":
        rows.append(("Gratuitous ARP Tx (v4)", str(stats.get("garpTx", 0))))
    else:
        rows.append(("Neigh. Adverts Tx (v6)", str(stats.get("neighborAdverTx", 0))))
    rows += [
        (f"State transitions {v}", str(stats.get("transitions", 0))),
        (f"Skew Time {v}", ms(sub.get("skewTime"))),
        (f"Master Down Interval {v}", ms(sub.get("masterDownInterval"))),
        ("Master heard", str(vrrpy.get("master_address") or "-")),
        ("Faults", "; ".join(str(f) for f in vrrpy.get("faults") or ()) or "none"),
        ("Last transition", str(counters.get("last_transition_reason") or "-")),
        ("Recent transitions", "newest first" if vrrpy.get("recent_transitions") else "-"),
        ("Sync group", str(vrrpy.get("sync_group") or "-")),
    ]
    installed: Mapping[str, Any] = vrrpy.get("addresses_installed") or {}
    addresses = sub.get("addresses") or ()
    rows.append((f"IP{fam[1]} Addresses", str(len(addresses))))
    spelled = list(installed) or [str(a) for a in addresses]
    for address in spelled:
        mark = installed.get(address)
        note = (
            "" if mark is None else (" (on the interface)" if mark else " (NOT on the interface)")
        )
        rows.append(("." * 34, f"{address}{note}"))
    for change in reversed(list(vrrpy.get("recent_transitions") or ())[-5:]):
        if isinstance(change, Mapping):
            when = change.get("at")
            stamp = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
                if isinstance(when, (int, float))
                else "?"
            )
            rows.append(
                (
                    f"  {stamp}",
                    f"{change.get('from')} -> {change.get('to')} ({change.get('code')}): "
                    f"{change.get('reason')}",
                )
            )
    for backend, result in (vrrpy.get("backends") or {}).items():
        last = result.get("last_error") if isinstance(result, Mapping) else None
        rows.append((f"Backend {backend}", f"error: {last}" if last else "ok"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f" {k.ljust(width)}  {val}" for k, val in rows) + "\n"
