"""vrrpyd's status page (vrrpy.observe.page, served by vrrpy.observe.server).

The HTML is read back by a small strict parser written here (every element
closed in order, the summary's rows and cells, the tags present), first from
hand-built snapshots: states, CARP, FAULT with its reasons, addresses
installed or not, tracking and backends, missing fields, and names, reasons
and script output written to break out of the HTML. Then the same parser
reads what a real browser made of the page (Debian's headless Chromium, its
``--dump-dom``): a vrrpyd pair in the namespace lab across a failover, and a
hostile snapshot served by the endpoint. Screenshots at a phone's size are
kept in ``$VRRPY_ARTIFACTS`` (default ``.artifacts/`` in the checkout).
"""

from __future__ import annotations

import base64
import gc
import gzip
import hashlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from support import lab_instance, require_root, require_tool
from test_metrics import status
from vrrpy.lab import Daemon, Lab, wait_for
from vrrpy.lab.netns import in_netns, stop_process
from vrrpy.observe.metrics import Snapshot
from vrrpy.observe.page import (
    HEADERS,
    PAUSE_EVERY,
    View,
    encode_parts,
    escape,
    instance_path,
    parse_target,
    render_page,
)
from vrrpy.observe.server import PAGE_VIEWS, MetricsServer

ROOT = Path(__file__).resolve().parent.parent
PORT = 9165
NOW = 1795600100.0

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
"""A name, a reason or a script's output that would run if it were not escaped."""


# ----------------------------------------------------------------- the parser

_VOID = {"meta", "br", "img", "link", "input", "hr", "wbr", "source", "area", "base", "col"}


class Page(HTMLParser):
    """One page read back: title, refresh, every tag, the summary's rows, the text.

    Strict: every element is closed, in order (a reason that broke out of its
    cell would leave a stray end tag or an unclosed element behind).
    """

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self.refresh: str | None = None
        self.rows: dict[str, list[str]] = {}
        """Summary rows by instance name: the text of each cell."""
        self.row_classes: dict[str, str] = {}
        self.texts: list[str] = []
        self._stack: list[str] = []
        self._summary = 0
        self._row: list[str] | None = None
        self._row_class = ""
        self._cell: list[str] | None = None
        self._name: list[str] | None = None
        self._row_name = ""
        self.feed(text)
        self.close()
        assert not self._stack or self._stack == ["html", "body"][: len(self._stack)], self._stack

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "meta" and (found.get("http-equiv") or "").lower() == "refresh":
            self.refresh = found.get("content")
        if tag in _VOID:
            if tag == "br" and self._cell is not None:
                self._cell.append(" ")
            return
        self._stack.append(tag)
        if tag == "table" and found.get("class") == "s":
            self._summary = len(self._stack)
        elif tag == "tr" and self._summary and "tbody" in self._stack[self._summary :]:
            self._row, self._row_class, self._row_name = [], found.get("class") or "", ""
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and self._row is not None and not self._row and self._cell is not None:
            self._name = []
        elif tag == "li" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        assert self._stack and self._stack[-1] == tag, f"</{tag}> inside {self._stack}"
        self._stack.pop()
        if tag == "a" and self._name is not None:
            self._row_name = "".join(self._name)
            self._name = None
        elif tag == "td" and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row_name:
                self.rows[self._row_name] = self._row
                self.row_classes[self._row_name] = self._row_class
            self._row = None
        elif tag == "table" and self._summary > len(self._stack):
            self._summary = 0

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1] == "title":
            self.title += data
        if self._stack and self._stack[-1] in ("style", "script"):
            return
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._name is not None:
            self._name.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())

    def has(self, tag: str) -> bool:
        return any(t == tag for t, _ in self.tags)

    def cell(self, name: str, column: str) -> str:
        columns = ["instance", "state", "priority", "master", "addresses", "last", "checks"]
        return self.rows[name][columns.index(column)]


def page(snapshot: Snapshot, view: View | None = None, code: int = 200) -> Page:
    got, parts = render_page(snapshot, view or View(), now=NOW, hostname="lb1")
    assert got == code
    return Page("".join(parts))


# ---------------------------------------------------------------- snapshots


def pair_snapshot() -> Snapshot:
    """A Master, a Backup, a FAULT with reasons, a CARP Backup, an instance with nothing."""
    master = status(
        virtual_addresses=["192.0.2.100/24", "192.0.2.101"],
        addresses_installed={"192.0.2.100/24": True, "192.0.2.101": True},
        address_interface="vrrp4.51",
        effective_priority=150,
        sync_group="G1",
    )
    master["counters"]["transitions_by"] = {
        "INIT": {"BACKUP": {"startup": 1}},
        "BACKUP": {"MASTER": {"master_down": 3}},
    }
    master["counters"]["last_transition_reason"] = (
        "no advert from master 192.0.2.12 for Master_Down_Interval"
    )
    backup = status(
        vrid=52,
        state="BACKUP",
        virtual_addresses=["198.51.100.1/24"],
        addresses_installed={"198.51.100.1/24": False},
        master_address="192.0.2.12",
        priority=100,
        effective_priority=80,
    )
    fault = status(
        vrid=53,
        state="FAULT",
        faults=["interface eth1 is down", "backend db: check script exit 3"],
        virtual_addresses=["203.0.113.1/24"],
        master_address=None,
    )
    carp = status(
        vrid=7,
        state="BACKUP",
        protocol="carp",
        carp={
            "vhid": 7,
            "advbase": 1,
            "advskew": 100,
            "advskew_sent": 120,
            "demote": 20,
            "profile": "openbsd",
        },
        virtual_addresses=["2001:db8::1/64"],
        master_address="2001:db8::11",
    )
    return Snapshot(
        instances={
            "VI_1": master,
            "VI_2": backup,
            "VI_3": fault,
            "VH_1": carp,
            "VI_bare": {"state": "INIT"},
        },
        tracking={
            "VI_1": {
                "tracks": {
                    "chk_web": {
                        "kind": "script",
                        "weight": 0,
                        "up": True,
                        "value": 0,
                        "reason": "script chk_web succeeded",
                        "agent": {
                            "kind": "script",
                            "runs": 7,
                            "skipped": 0,
                            "last": {
                                "outcome": "exit",
                                "status": 0,
                                "output": "nginx is fine",
                                "runtime": 0.012,
                            },
                        },
                    },
                    "gw": {
                        "kind": "ping",
                        "weight": -20,
                        "up": True,
                        "reason": "ping gw: 1 of 1 reachable",
                        "agent": {
                            "kind": "ping",
                            "targets": {
                                "192.0.2.1": {
                                    "reachable": True,
                                    "sent": 10,
                                    "received": 10,
                                    "rtt": 0.0004,
                                }
                            },
                        },
                    },
                }
            },
            "VI_2": {
                "tracks": {
                    "level": {
                        "kind": "file",
                        "weight": 10,
                        "up": False,
                        "value": -2,
                        "reason": "file level: -2",
                    }
                }
            },
        },
        sync_groups={
            "G1": {"state": "MASTER", "members": ["VI_1"], "in_force": True, "last_reason": ""}
        },
        pid=4242,
        start_time=NOW - 3600,
        version="0.1.0",
        realtime={"policy": "SCHED_RR", "rttime_exceeded": 0},
    )


def with_backends(snapshot: Snapshot) -> Snapshot:
    instances = dict(snapshot.instances)
    vi1 = dict(instances["VI_1"])
    vi1["backends"] = {
        "drbd": {
            "calls": 4,
            "failures": 1,
            "timeouts": 0,
            "refusals": 1,
            "cancelled": 0,
            "last_error": "drbdadm primary: exit 11",
            "last_phase": "prepare",
            "last_seconds": 0.25,
            "last_state": "MASTER",
            "checks": 10,
            "check_failures": 2,
            "last_check": "disk Outdated",
        },
        "ipvs": {
            "calls": 2,
            "failures": 0,
            "last_check": "ok",
            "status": {  # an IPVS pool's (vrrpy.ipvs.backend), abridged
                "installed": True,
                "services": 1,
                "real_servers": 2,
                "alive": 1,
                "quorum_lost": [],
                "dynamic_weights": {"tcp 192.0.2.100:80 -> 192.0.2.22:80": 0},
            },
        },
    }
    instances["VI_1"] = vi1
    return Snapshot(
        instances=instances,
        tracking=snapshot.tracking,
        sync_groups=snapshot.sync_groups,
        pid=snapshot.pid,
    )


# ---------------------------------------------------------------- rendering


def test_the_summary_shows_each_instance_in_one_row() -> None:
    shown = page(pair_snapshot())
    assert set(shown.rows) == {"VI_1", "VI_2", "VI_3", "VH_1", "VI_bare"}
    assert shown.refresh == "2"
    assert shown.title == "vrrpyd lb1: 1 MASTER, 2 BACKUP, 1 FAULT, 1 INIT"
    assert shown.cell("VI_1", "instance") == "VI_1 VRID 51 · vrrp4.51"
    assert shown.cell("VI_1", "state") == "MASTER for 12 s"
    assert shown.cell("VI_1", "priority") == "150 / 150"
    assert shown.cell("VI_1", "master") == "192.0.2.11 (this node)"
    assert shown.cell("VI_1", "addresses") == "192.0.2.100/24 ✓ installed 192.0.2.101 ✓ installed"
    assert shown.cell("VI_1", "last") == (
        "1 min 39 s ago: no advert from master 192.0.2.12 for Master_Down_Interval"
    )
    assert shown.cell("VI_1", "checks") == "tracking 2/2 up"
    assert shown.cell("VI_2", "priority") == "100 / 80"  # tracking moved it
    assert shown.cell("VI_2", "master") == "192.0.2.12"
    assert shown.cell("VI_2", "addresses") == "198.51.100.1/24 not installed"
    assert shown.cell("VI_2", "checks") == "tracking 0/1 up"
    assert shown.row_classes["VI_1"] == ""
    assert shown.row_classes["VI_2"] == "att"  # its tracked file is down
    assert "Needs attention: 3" in shown.text
    assert "1 MASTER · 2 BACKUP · 1 FAULT · 1 INIT" in shown.text
    assert "G1 MASTER VI_1" in shown.text  # the sync group
    assert ("a", {"href": "./instance/VI_1"}) in shown.tags
    assert "pid 4242" in shown.text and "up 1 h 0 min" in shown.text


def test_a_fault_shows_its_reasons() -> None:
    shown = page(pair_snapshot())
    assert shown.cell("VI_3", "state") == "FAULT for 12 s"
    assert shown.cell("VI_3", "master") == "none heard"
    assert shown.cell("VI_3", "checks") == (
        "2 faults: interface eth1 is down; backend db: check script exit 3"
    )
    assert shown.row_classes["VI_3"] == "att"
    detail = page(pair_snapshot(), View(instance="VI_3"))
    assert "faults interface eth1 is down backend db: check script exit 3" in detail.text
    assert "Needs attention: in FAULT" in detail.text


def test_addresses_installed_or_not_are_marked_for_the_state() -> None:
    def one(state: str, installed: dict[str, bool] | None) -> tuple[str, str]:
        extra = {} if installed is None else {"addresses_installed": installed}
        snapshot = Snapshot(
            instances={"VI_1": status(state=state, virtual_addresses=["192.0.2.100/24"], **extra)}
        )
        shown = page(snapshot)
        return shown.cell("VI_1", "addresses"), shown.row_classes["VI_1"]

    assert one("MASTER", {"192.0.2.100/24": True}) == ("192.0.2.100/24 ✓ installed", "")
    assert one("MASTER", {"192.0.2.100/24": False}) == ("192.0.2.100/24 ✗ not installed", "att")
    assert one("BACKUP", {"192.0.2.100/24": True}) == ("192.0.2.100/24 ✗ installed", "att")
    assert one("BACKUP", {"192.0.2.100/24": False}) == ("192.0.2.100/24 not installed", "")
    assert one("FAULT", {"192.0.2.100/24": True})[0] == "192.0.2.100/24 ✗ installed"
    assert one("MASTER", None) == ("192.0.2.100/24 unknown", "")
    # The kernel's answer spelled as keepalived prints a /32, the spec with its prefix.
    snapshot = Snapshot(
        instances={
            "VI_1": status(
                virtual_addresses=["192.0.2.9/32"], addresses_installed={"192.0.2.9": False}
            )
        }
    )
    assert page(snapshot).cell("VI_1", "addresses") == "192.0.2.9 ✗ not installed"
    # The red mark is red: its class is the page's "bad".
    rendered = "".join(render_page(snapshot, View(), now=NOW)[1])
    assert '<span class="bad">✗ not installed</span>' in rendered


def test_addresses_pending_in_the_kernel_are_said() -> None:
    doc = status(virtual_addresses=["192.0.2.100/24"])
    doc["runtime"]["addresses_pending"] = ["192.0.2.100/24"]
    shown = page(Snapshot(instances={"VI_1": doc}))
    assert shown.cell("VI_1", "addresses") == "192.0.2.100/24 unknown (pending)"
    assert shown.row_classes["VI_1"] == "att"


def test_a_carp_instance_shows_its_advskew() -> None:
    shown = page(pair_snapshot())
    assert shown.cell("VH_1", "instance") == "VH_1 CARP VHID 7 · eth0"
    assert shown.cell("VH_1", "priority") == "100 / 120 advskew"
    assert shown.cell("VH_1", "addresses") == "2001:db8::1/64 unknown"
    detail = page(pair_snapshot(), View(instance="VH_1"))
    for said in (
        "protocol CARP",
        "VHID 7",
        "advskew configured / sent 100 / 120",
        "advbase 1 s",
        "demotion 20",
        "profile openbsd",
        "master heard 2001:db8::11",
    ):
        assert said in detail.text, said


def test_the_instance_page_has_everything_the_status_has() -> None:
    detail = page(with_backends(pair_snapshot()), View(instance="VI_1"))
    assert detail.title == "VI_1 MASTER · vrrpyd lb1"
    assert detail.refresh == "2"
    for said in (
        "VRID 51",
        "interface eth0",
        "addresses on vrrp4.51",
        "priority base / effective 150 / 150",
        "master heard 192.0.2.11 (this node)",
        "sync group G1",
        "faults none",
        # addresses
        "192.0.2.100/24 ✓ installed 192.0.2.101 ✓ installed",
        # the last transition and the counts by change and reason
        "reason no advert from master 192.0.2.12 for Master_Down_Interval",
        "INIT → BACKUP startup 1 BACKUP → MASTER master_down 3",
        # tracking: a script with its output, a ping target
        "chk_web script up FAULT when down script chk_web succeeded",
        "runs 7 · last exit 0 in 12 ms · output: nginx is fine",
        "gw ping up weight -20",
        "192.0.2.1 reachable 0.40 ms (10/10)",
        # backends, their last step, error and check, and a backend's own status
        "calls 4 failures 1 timeouts 0 refusals of MASTER 1",
        "last step prepare to MASTER in 250 ms",
        "last check disk Outdated last error drbdadm primary: exit 11",
        "installed yes services 1 real_servers 2 alive 1 quorum_lost \u2013",
        "dynamic_weights tcp 192.0.2.100:80 -> 192.0.2.22:80 0",
        # counters
        "adverts sent 10 adverts received 20 became MASTER 6 left MASTER 5",
        "address adds refused 1",
    ):
        assert said in detail.text, said
    assert "Needs attention: backend drbd: disk Outdated" in detail.text


def test_recent_transitions_are_shown_when_the_status_has_them() -> None:
    doc = status()
    doc["recent_transitions"] = [
        {"at": NOW - 60, "from": "INIT", "to": "BACKUP", "code": "startup", "reason": "start"},
        {"at": NOW - 5, "from": "BACKUP", "to": "MASTER", "code": "master_down", "reason": "x"},
    ]
    detail = page(Snapshot(instances={"VI_1": doc}), View(instance="VI_1"))
    # Newest first.
    assert "5.0 s ago BACKUP → MASTER master_down x 1 min 0 s ago INIT → BACKUP startup start" in (
        detail.text
    )


def test_missing_fields_render_as_unknown_never_fail() -> None:
    odd: dict[str, Any] = {
        "state": "WEIRD",
        "priority": "high",
        "counters": [],
        "faults": "not a list",
        "virtual_addresses": None,
        "backends": {"x": None},
        "carp": None,
        "histograms": {"takeover_seconds": {"count": "two"}},
        "recent_transitions": [None, {"at": "yesterday"}],
    }
    snapshot = Snapshot(
        instances={"VI_1": odd, "VI_2": {}, "VI_3": "not a mapping"},  # type: ignore[dict-item]
        tracking={"VI_1": {"tracks": {"t": None}}, "VI_2": "no"},  # type: ignore[dict-item]
        sync_groups={"G": "x"},  # type: ignore[dict-item]
        realtime={},
    )
    shown = page(snapshot)
    assert set(shown.rows) == {"VI_1", "VI_2"}
    assert shown.cell("VI_1", "state") == "WEIRD"
    assert shown.cell("VI_1", "priority") == "\u2013 / \u2013"
    assert shown.cell("VI_2", "state") == "?"
    assert shown.row_classes["VI_1"] == "att"
    for name in ("VI_1", "VI_2"):
        assert "Virtual addresses" in page(snapshot, View(instance=name)).text
    assert page(Snapshot(), View()).rows == {}


def test_hostile_names_reasons_and_output_are_escaped() -> None:
    doc = status(
        faults=[HOSTILE],
        virtual_addresses=[HOSTILE],
        master_address=HOSTILE,
        interface=HOSTILE,
    )
    doc["counters"]["last_transition_reason"] = "</td></tr></table>" + HOSTILE
    doc["counters"]["drops"] = {HOSTILE: 1}
    doc["counters"]["transitions_by"] = {HOSTILE: {HOSTILE: {HOSTILE: 1}}}
    doc["backends"] = {HOSTILE: {"last_error": HOSTILE, "status": {HOSTILE: [HOSTILE]}}}
    doc["recent_transitions"] = [{"at": NOW, "from": HOSTILE, "reason": HOSTILE}]
    name = HOSTILE + "\u202eevil\x00\x1b[31m'"
    snapshot = Snapshot(
        instances={name: doc},
        tracking={
            name: {
                "tracks": {
                    HOSTILE: {
                        "kind": HOSTILE,
                        "reason": HOSTILE,
                        "agent": {"last": {"output": HOSTILE}, "targets": {HOSTILE: {}}},
                    }
                }
            }
        },
        sync_groups={HOSTILE: {"state": HOSTILE, "members": [name], "last_reason": HOSTILE}},
        version=HOSTILE,
    )
    for view in (View(), View(instance=name)):
        code, parts = render_page(snapshot, view, now=NOW, hostname=HOSTILE)
        assert code == 200
        html = "".join(parts)
        shown = Page(html)
        assert not shown.has("script") and not shown.has("img"), view
        assert not any(key.startswith("on") for _, attrs in shown.tags for key in attrs), view
        assert HOSTILE in shown.text
        assert "\u202e" not in html and "\x00" not in html and "\x1b" not in html
        assert "\ufffdevil\ufffd\ufffd[31m'" in shown.text  # the controls, made visible
    shown = page(snapshot)
    assert shown.rows[
        name.replace("\u202e", "\ufffd").replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    ]
    # The link to its page names it, whatever it contains.
    link = instance_path(name)
    assert re.fullmatch(r"/instance/[A-Za-z0-9%_.~-]+", link)
    assert parse_target(link) == View(instance=name)


def test_escape_and_encoding() -> None:
    assert escape("VI_1") == "VI_1"
    assert escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;"
    assert escape("x\ty\nz\r\x7f\x85\u2066") == "x\ty\nz\ufffd\ufffd\ufffd\ufffd"
    assert escape(42) == "42"
    # A lone surrogate (undecodable bytes kept by surrogateescape) cannot be UTF-8.
    assert encode_parts(["a\udcffb"]) == [b"a?b"]
    name = "VI_\udcff"
    assert parse_target(instance_path(name)) == View(instance=name)


@pytest.mark.parametrize(
    ("target", "view"),
    [
        ("/", View()),
        ("/?", View()),
        ("/?show=FAULT", View(show="FAULT")),
        ("/?show=master", View(show="MASTER")),
        ("/?show=attention", View(show="attention")),
        ("/?show=bogus", None),
        ("/?instance=VI_1", View()),  # one route per page: /instance/NAME
        ("/instance/VI_1", View(instance="VI_1")),
        ("/instance/VI%3A1%2Fa%3Fb", View(instance="VI:1/a?b")),
        ("/instance/", None),
        ("/metrics", None),
        ("/index.html", None),
        ("/?" + "&".join(f"k{i}=v" for i in range(20)), None),
    ],
)
def test_routes(target: str, view: View | None) -> None:
    assert parse_target(target) == view


@pytest.mark.parametrize("prefix", ["/", "/vrrpyd/"])
def test_every_link_is_relative_and_leads_to_a_page_of_the_endpoint(prefix: str) -> None:
    """A proxy may serve the page under a prefix: no link may leave it."""
    snapshot = pair_snapshot()
    strange = "VI:1/a?b#c d"
    snapshot.instances[strange] = status()  # type: ignore[index]
    pages = {
        prefix: View(),
        prefix + "?show=FAULT": View(show="FAULT"),
        prefix + instance_path(strange)[1:]: View(instance=strange),
        prefix + "instance/nope": View(instance="nope"),
    }
    reached: set[View | str] = set()
    for url, view in pages.items():
        _, parts = render_page(snapshot, view, now=NOW)
        for tag, attrs in Page("".join(parts)).tags:
            if tag != "a":
                continue
            href = attrs["href"] or ""
            assert not href.startswith(("/", "http:", "https:", "//")), href
            target = urllib.parse.urljoin("http://lb1" + url, href)[len("http://lb1") :]
            assert target.startswith(prefix), (url, href, target)
            inside = "/" + target[len(prefix) :]
            found = "metrics" if inside == "/metrics" else parse_target(inside)
            assert found is not None, (url, href)
            reached.add(found)
    assert View(instance=strange) in reached and View(instance="VI_1") in reached
    assert {View(), View(show="attention"), "metrics"} <= reached


def test_the_summary_can_show_only_a_state_or_what_needs_attention() -> None:
    shown = page(pair_snapshot(), View(show="FAULT"))
    assert set(shown.rows) == {"VI_3"}
    assert "Showing 1 of 5: FAULT" in shown.text
    assert ("a", {"href": "./?show=FAULT", "class": "on"}) in shown.tags
    assert set(page(pair_snapshot(), View(show="attention")).rows) == {"VI_2", "VI_3", "VI_bare"}
    assert page(pair_snapshot(), View(show="MASTER")).rows.keys() == {"VI_1"}


def test_an_unknown_instance_and_a_daemon_that_cannot_be_read() -> None:
    missing = page(pair_snapshot(), View(instance="VI_9" + HOSTILE), code=404)
    assert "No instance VI_9" + HOSTILE in missing.text
    assert not missing.has("script")
    down = page(Snapshot(up=False), code=503)
    assert "State unavailable" in down.text


def test_the_style_sheet_is_the_one_the_policy_allows() -> None:
    html = "".join(render_page(pair_snapshot(), View(), now=NOW)[1])
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = dict(HEADERS)["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert policy.startswith("default-src 'none';")
    assert "frame-ancestors 'none'" in policy
    assert 'style="' not in html  # an inline style attribute would need 'unsafe-hashes'
    assert "<script" not in html  # no script at all
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html


def test_two_thousand_instances_make_a_page_of_rows_not_details() -> None:
    instances = {
        f"VI_{i}": status(
            vrid=i % 255 + 1,
            state="MASTER" if i % 2 else "BACKUP",
            virtual_addresses=[f"192.0.2.{i % 250}/24"],
            addresses_installed={f"192.0.2.{i % 250}/24": bool(i % 2)},
        )
        for i in range(2000)
    }
    pauses = []
    code, parts = render_page(
        Snapshot(instances=instances), View(), now=NOW, pause=lambda: pauses.append(1)
    )
    data = encode_parts(parts)
    size = sum(len(d) for d in data)
    assert code == 200 and 500_000 < size < 1_500_000, size  # ~0.5 kB a row
    assert max(len(d) for d in data) < 100_000  # pieces, not one string
    assert len(pauses) == 2000 // PAUSE_EVERY  # every few rows
    assert len(gzip.compress(b"".join(data), 1)) < 100_000
    _, one = render_page(Snapshot(instances=instances), View(instance="VI_7"), now=NOW)
    assert sum(len(p) for p in one) < 20_000
    assert len(Page("".join(parts)).rows) == 2000


# ----------------------------------------------------------------- the server


def _get(
    server: MetricsServer, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def served() -> Iterator[MetricsServer]:
    server = MetricsServer(pair_snapshot, "127.0.0.1", 0, min_interval=0)
    server.start()
    yield server
    server.stop()


def test_the_endpoint_serves_the_page_with_its_headers(served: MetricsServer) -> None:
    code, headers, body = _get(served, "/")
    assert code == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    for name, value in HEADERS:
        assert headers[name] == value
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert set(Page(body.decode()).rows) == {"VI_1", "VI_2", "VI_3", "VH_1", "VI_bare"}
    code, headers, empty = _get(served, "/", method="HEAD")
    assert code == 200 and empty == b"" and int(headers["Content-Length"]) == len(body)
    assert "Content-Security-Policy" in headers
    code, headers, zipped = _get(served, "/", **{"Accept-Encoding": "gzip, deflate"})
    assert headers["Content-Encoding"] == "gzip"
    assert "VI_bare" in gzip.decompress(zipped).decode()
    code, _, body = _get(served, "/instance/VI_1")
    assert code == 200 and Page(body.decode()).title.startswith("VI_1 MASTER")
    assert _get(served, "/?show=FAULT")[0] == 200
    code, headers, body = _get(served, "/instance/nope")
    assert code == 404 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Content-Security-Policy" in headers and b"No instance nope" in body
    # /metrics is what it was; other paths are not found; nothing but GET and HEAD.
    code, headers, body = _get(served, "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Content-Security-Policy" not in headers
    assert b'keepalived_vrrp_state{iname="VI_1"' in body
    assert _get(served, "/nope")[0] == 404
    assert _get(served, "/?show=bogus")[0] == 404
    assert _get(served, "/", method="POST")[0] == 501


def test_a_view_is_rendered_at_most_once_per_interval_and_few_are_kept() -> None:
    calls = {"n": 0}
    handed: list[Snapshot] = []

    def snapshot() -> Snapshot:
        calls["n"] += 1
        handed.append(pair_snapshot())
        return handed[-1]

    server = MetricsServer(snapshot, min_interval=60)
    threshold = gc.get_threshold()
    first = server.page(View())
    assert server.page(View()) is first and calls["n"] == 1
    assert gc.get_threshold() == threshold
    assert handed[0].instances == {}, "the snapshot is freed a piece at a time"
    assert server.page(View(instance="VI_1"))[0] == 200 and calls["n"] == 2
    for i in range(3 * PAGE_VIEWS):
        assert server.page(View(instance=f"nope{i}"))[0] == 404
    assert len(server._pages) == PAGE_VIEWS
    assert server.page_renders == 2 + 3 * PAGE_VIEWS
    # The metrics have their own render and cache.
    server.scrape()
    assert calls["n"] == 3 + 3 * PAGE_VIEWS and server.renders == 1


def test_the_page_says_so_when_no_snapshot_can_be_taken() -> None:
    def broken() -> Snapshot:
        raise OSError("the runtime is gone")

    server = MetricsServer(broken, min_interval=0)
    code, body = server.page(View())
    assert code == 503 and b"State unavailable" in b"".join(body.chunks)
    assert server.page_errors == 1 and server.errors == 0  # keepalived_up counts scrapes only


# ------------------------------------------------------- a real browser, a real pair


def browser() -> str:
    """Debian's headless Chromium: ``chromium-headless-shell`` (no GTK; what run-tests.sh
    installs), else a full ``chromium`` (``--headless=new``)."""
    for name in ("chromium-headless-shell", "chromium"):
        found = shutil.which(name)
        if found is not None:
            return found
    return require_tool("chromium-headless-shell")  # skips, or fails under CI=true


def artifacts() -> Path:
    where = Path(os.environ.get("VRRPY_ARTIFACTS") or ROOT / ".artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


class Browser:
    """Headless Chromium started in one lab host per page load, killed by PID if it hangs."""

    def __init__(self, lab: Lab, host: str, workdir: Path) -> None:
        self.lab = lab
        self.host = host
        self.binary = browser()
        self.profile = workdir / "chromium-profile"

    def run(self, url: str, *args: str, timeout: float = 60.0) -> str:
        argv = [
            self.binary,
            "--no-sandbox",  # root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={self.profile}",
            *args,
            url,
        ]
        if not self.binary.endswith("headless-shell"):
            argv.insert(1, "--headless=new")
        proc = self.lab[self.host].popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc, signal.SIGKILL)
            raise AssertionError(f"chromium did not finish {url} in {timeout} s") from None
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()

    def dom(self, url: str) -> Page:
        """The page as the browser built it (after parsing; scripts would have run)."""
        return Page(self.run(url, "--dump-dom"))

    def screenshot(self, url: str, name: str) -> Path:
        """A phone-sized (412 x 915 CSS px) screenshot, kept as a test artifact."""
        path = artifacts() / name
        path.unlink(missing_ok=True)
        self.run(url, f"--screenshot={path}", "--window-size=412,915", "--hide-scrollbars")
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, path
        return path


def instance(priority: int) -> dict[str, Any]:
    return lab_instance(priority, track_script=["chk_up"], backends=["svc"])


TABLES = {
    "track_script": [{"name": "chk_up", "script": "/bin/true", "interval": 0.5, "weight": -10}],
    "backend": [{"name": "svc", "type": "script", "check": "/bin/true", "check_interval": 0.5}],
}


def test_a_browser_shows_the_pair_across_a_failover() -> None:
    require_root()
    browser()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=3) as lab:
        daemons = [
            Daemon(
                lab[f"h{i}"],
                Path(tmp),
                [instance(priority)],
                tables=TABLES,
                global_={"metrics_listen": f"192.0.2.1{i}:{PORT}"},
            )
            for i, priority in ((1, 200), (2, 100))
        ]
        # The browser runs on a third host, as an operator's machine would.
        chromium = Browser(lab, "h3", Path(tmp))
        h1_url, h2_url = f"http://192.0.2.11:{PORT}/", f"http://192.0.2.12:{PORT}/"
        try:
            for daemon in daemons:
                daemon.start()
            h1, h2 = daemons
            assert wait_for(lambda: h1.instance()["state"] == "MASTER", 5)
            assert wait_for(lambda: h2.instance()["state"] == "BACKUP", 5)

            # Before: h1 is Master with the address on its interface, h2 a Backup hearing it.
            # (Tracking and backend results come after their first runs: wait for them.)
            def settled(url: str) -> Page:
                found: list[Page] = []

                def ready() -> bool:
                    found[:] = [chromium.dom(url)]
                    return "tracking 2/2 up" in found[0].cell("VI_1", "checks")

                assert wait_for(ready, 15, step=0.2), found[0].rows
                return found[0]

            master = settled(h1_url)
            assert master.refresh == "2"
            assert master.cell("VI_1", "state").startswith("MASTER")
            assert master.cell("VI_1", "priority") == "200 / 200"
            assert master.cell("VI_1", "master") == "192.0.2.11 (this node)"
            assert master.cell("VI_1", "addresses") == "192.0.2.100/24 ✓ installed"
            assert master.cell("VI_1", "checks") == "tracking 2/2 up 1 backend"  # eth0 and chk_up
            assert "Nothing needs attention." in master.text
            backup = settled(h2_url)
            assert backup.cell("VI_1", "state").startswith("BACKUP")
            assert backup.cell("VI_1", "priority") == "100 / 100"
            assert backup.cell("VI_1", "master") == "192.0.2.11"
            assert backup.cell("VI_1", "addresses") == "192.0.2.100/24 not installed"
            assert backup.title == "vrrpyd: 1 BACKUP" or backup.title.endswith(": 1 BACKUP")
            chromium.screenshot(h2_url, "status-page-backup-before-failover.png")

            # The Master dies without a word; h2's page shows the takeover and its reason.
            h1.kill()
            assert wait_for(lambda: h2.instance()["state"] == "MASTER", 5)
            after: list[Page] = []

            def shows_master() -> bool:
                after[:] = [chromium.dom(h2_url)]
                return after[0].cell("VI_1", "state").startswith("MASTER")

            assert wait_for(shows_master, 10, step=0.2), after[0].rows
            now = after[0]
            assert now.cell("VI_1", "master") == "192.0.2.12 (this node)"
            assert now.cell("VI_1", "addresses") == "192.0.2.100/24 ✓ installed"
            assert re.fullmatch(
                r"[\d.]+ (ms|s) ago: no advert from master 192\.0\.2\.11 for Master_Down_Interval",
                now.cell("VI_1", "last"),
            ), now.cell("VI_1", "last")
            detail = chromium.dom(h2_url + "instance/VI_1")
            assert detail.title.startswith("VI_1 MASTER")
            for said in (
                "master heard 192.0.2.12 (this node)",
                "192.0.2.100/24 ✓ installed",
                "INIT → BACKUP startup 1",
                "BACKUP → MASTER master_down 1",
                "became MASTER 1",
                "chk_up script up weight -10",
                "svc",
                "last check ok",
            ):
                assert said in detail.text, said
            chromium.screenshot(h2_url, "status-page-master-after-failover.png")
            chromium.screenshot(h2_url + "instance/VI_1", "status-page-instance-after-failover.png")
        finally:
            for daemon in daemons:
                if daemon.proc is not None and daemon.proc.poll() is None:
                    daemon.terminate()


def test_a_browser_runs_nothing_a_name_or_a_reason_carries() -> None:
    require_root()
    browser()

    def hostile() -> Snapshot:  # a new one each time: the server consumes what it is handed
        doc = status(faults=[HOSTILE], virtual_addresses=["192.0.2.100/24"])
        doc["counters"]["last_transition_reason"] = "</td></tr></table>" + HOSTILE
        output = {"kind": "script", "agent": {"last": {"output": HOSTILE}}}
        return Snapshot(
            instances={HOSTILE: doc, "VI_1": status()},
            tracking={HOSTILE: {"tracks": {"t": output}}},
        )

    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        server = MetricsServer(hostile, "192.0.2.11", 0, min_interval=0)
        in_netns(lab["h1"].netns, server.start)  # the socket is made inside the lab host
        try:
            chromium = Browser(lab, "h1", Path(tmp))
            base = f"http://192.0.2.11:{server.address[1]}"
            for url in (f"{base}/", base + instance_path(HOSTILE)):
                shown = chromium.dom(url)
                assert not shown.has("script") and not shown.has("img"), url
                assert shown.title.startswith(("vrrpyd", HOSTILE)), shown.title  # not "pwned"
                assert HOSTILE in shown.text
            summary = chromium.dom(f"{base}/")
            assert set(summary.rows) == {HOSTILE, "VI_1"}
            assert summary.cell(HOSTILE, "last").endswith("ago: </td></tr></table>" + HOSTILE)
            chromium.screenshot(f"{base}/", "status-page-hostile-names.png")
        finally:
            server.stop()
