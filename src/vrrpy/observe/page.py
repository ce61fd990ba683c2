"""The status page: each instance's state on a read-only HTML page, beside ``/metrics``.

:func:`render_page` turns the :class:`~vrrpy.observe.metrics.Snapshot` the
metrics are rendered from into HTML, for people: what state each instance is
in and why, the priorities (base and effective), the Master it hears, whether
its virtual addresses are really on the interface, its last transition and its
reason, its counters, tracked objects and backends. Pure, like the metrics
renderer: the caller (:meth:`vrrpy.observe.server.MetricsServer.page`) takes
the snapshot and renders in the endpoint's thread, under the same rules (no
garbage collection during the render, pieces rather than one string, a
``pause`` between pieces, at most one render per ``min_interval`` and view).

Why a summary and a page per instance
=====================================

The page refreshes itself every :data:`REFRESH_SECONDS`, so its size is paid
at every refresh, by the daemon and by a phone. Everything about every
instance on one page grows with the configuration: counters, drops and
transitions by reason, tracked objects and backends make a few kB per
instance, megabytes at 2,000 instances. ``<details>`` would fold it on the
screen but still send, parse and lay it out at every refresh. So:

* ``/``: one row per instance, what someone looking for trouble scans first
  (state, base / effective priority, the Master heard, the addresses and
  whether they are installed, the last transition, faults, tracking and
  backends in one word each); rows that need attention are marked and counted
  at the top. About 0.5 kB a row: 2,000 instances make 1 MB (33 kB with
  gzip, which browsers ask for), rendered in about 60 ms of CPU, after the
  snapshot (docs/observability.md has the figures).
* ``/?show=FAULT`` (or ``MASTER``, ``BACKUP``, ``INIT``, ``attention``): the
  same rows, only those; the view to keep open on a phone when there are
  hundreds.
* ``/instance/NAME`` (``NAME`` percent-encoded): everything the status has
  about that one instance.

Every link is relative (``./instance/VI_1``, ``../?show=FAULT``), so a
reverse proxy may serve the page under a prefix of its own.

No script, no assets
====================

The refresh is ``<meta http-equiv="refresh">``; the one style sheet is inline
and allowed by its hash in the ``Content-Security-Policy`` (:data:`HEADERS`,
``default-src 'none'``: no script, no image, no frame, no form, no
connection may load, whatever a name or a reason contains). Under 40 em
(a phone held upright) the summary table becomes one card per instance,
labelled by the style sheet rather than by text repeated in every row.

Everything from the status is user data
=======================================

Instance names, fault and transition reasons, a track script's output, a
backend's error: all of it is written through :func:`escape`, which escapes
HTML's five characters and replaces control and bidirectional-override
characters (which could make a name look like another) in one
``str.translate``. Lone surrogates (undecodable bytes) become ``?`` when the
page is encoded (:func:`encode_parts`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from vrrpy.observe.metrics import Snapshot, keepalived_address

__all__ = [
    "CONTENT_TYPE",
    "HEADERS",
    "REFRESH_SECONDS",
    "SHOW",
    "View",
    "encode_parts",
    "escape",
    "instance_path",
    "parse_target",
    "render_page",
    "render_unavailable",
]

CONTENT_TYPE: Final = "text/html; charset=utf-8"

REFRESH_SECONDS: Final = 2
"""How often the page reloads itself: a failover shows within two seconds, and
the endpoint renders a view at most once a second whoever asks."""

SHOW: Final = ("MASTER", "BACKUP", "FAULT", "INIT", "attention")
"""The filters of the summary (``/?show=...``)."""

ROWS_PER_PIECE: Final = 100
"""Summary rows joined into one piece (about 50 kB): small enough to encode and
send without holding the GIL for long, few enough that joining costs nothing."""

PAUSE_EVERY: Final = 4
"""Rows rendered between two calls of ``pause`` (a row is some 20 us of Python; see
:meth:`vrrpy.observe.server.MetricsServer.pause`)."""

TEXT_LIMIT: Final = 300
"""Characters of one free-text value (a reason, a script's output) shown before ``…``."""

NESTED_LIMIT: Final = 40
"""Entries of one mapping or list shown in a backend's own status before ``… N more``."""

_STYLE: Final = (
    ":root{color-scheme:light dark;--ok:#1a7f37;--bad:#c0262d;--warn:#9a6700;"
    "--mute:#6e7781;--line:#d0d7de;--mark:rgba(192,38,45,.09)}"
    "@media (prefers-color-scheme:dark){:root{--ok:#3fb950;--bad:#ff7b72;--warn:#d29922;"
    "--mute:#8b949e;--line:#30363d;--mark:rgba(255,123,114,.12)}}"
    "body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
    "max-width:84rem;padding:.5rem .7rem}"
    "h1{font-size:1.3rem;margin:.4rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}"
    "h3{font-size:1rem;margin:.8rem 0 .2rem}a{color:inherit}p{margin:.4rem 0}"
    "nav{display:flex;flex-wrap:wrap;gap:.2rem .9rem}nav a.on{font-weight:700}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;vertical-align:top;padding:.3rem .45rem;"
    "border-bottom:1px solid var(--line)}"
    "th{font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "ul{margin:0;padding:0;list-style:none}"
    ".b{display:inline-block;padding:0 .45rem;border:1px solid;border-radius:.7rem;"
    "font-weight:700;font-size:.85em;white-space:nowrap}"
    ".MASTER{color:var(--ok)}.BACKUP{color:var(--mute)}.FAULT{color:var(--bad)}"
    ".INIT,.warn{color:var(--warn)}"
    ".ok{color:var(--ok)}.bad{color:var(--bad);font-weight:700}.m{color:var(--mute)}"
    "tr.att{background:var(--mark)}"
    "small,.note{color:var(--mute)}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .9rem;margin:.3rem 0}"
    "dt{color:var(--mute)}dd{margin:0;overflow-wrap:anywhere}"
    "dl dl{margin:0}"
    ".w{overflow-x:auto}td{overflow-wrap:break-word}"
    "footer{margin:1.5rem 0 .5rem;color:var(--mute);font-size:.85em}"
    "@media (max-width:40em){"
    "table.s,table.s tbody{display:block}table.s thead{display:none}"
    "table.s tr{display:block;border:1px solid var(--line);border-radius:.5rem;"
    "margin:.5rem 0;padding:.3rem .4rem}"
    "table.s td{display:block;border:0;padding:.1rem 0}"
    "table.s td:first-child{font-weight:700}"
    "table.s td:nth-child(n+3)::before{color:var(--mute);margin-right:.4rem}"
    "table.s td:nth-child(3)::before{content:'priority'}"
    "table.s td:nth-child(4)::before{content:'master'}"
    "table.s td:nth-child(5)::before{content:'addresses'}"
    "table.s td:nth-child(6)::before{content:'last change'}"
    "table.s td:nth-child(7)::before{content:'checks'}"
    "table.s ul,table.s li{display:inline}table.s li+li::before{content:', '}"
    "}"
)

HEADERS: Final[tuple[tuple[str, str], ...]] = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'sha256-"
        + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
        + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
"""Sent with every HTML answer. The page loads nothing and runs nothing: ``default-src
'none'`` with only its own style sheet allowed (by hash, so an injected ``<style>``
would not apply either); never framed (clickjacking a read-only page gains little,
but nothing needs it); no ``Referer`` leaks the management address to a link's
target; ``no-store``: live state must never be served from a cache."""

_DASH: Final = "&#8211;"
_NONE: Final = '<span class="m">&#8211;</span>'

_STATES: Final[Mapping[str, str]] = {s: s for s in ("MASTER", "BACKUP", "FAULT", "INIT")}


# ------------------------------------------------------------------ escaping


def _escape_table() -> dict[int, str]:
    table: dict[int, str] = {c: "\ufffd" for c in range(0x20) if c not in (0x09, 0x0A)}
    table.update({c: "\ufffd" for c in range(0x7F, 0xA0)})
    # Bidirectional embeddings, overrides and isolates: "VI_1<RLO>..." must not
    # read as another name.
    table.update({c: "\ufffd" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
    table.update(
        {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;"}
        | {ord("'"): "&#39;"}
    )
    return table


_ESCAPE: Final = _escape_table()
_UNSAFE: Final = re.compile("[" + "".join(f"\\U{c:08x}" for c in sorted(_ESCAPE)) + "]")


def escape(value: object) -> str:
    """``value`` as text safe in HTML content and in a quoted attribute value."""
    text = value if type(value) is str else str(value)
    # Most names and reasons need nothing: one regex scan (C) instead of a table
    # lookup per character.
    return text if _UNSAFE.search(text) is None else text.translate(_ESCAPE)


def _clip(value: object, limit: int = TEXT_LIMIT) -> str:
    """``value`` escaped, cut to ``limit`` characters first (the whole text in a title)."""
    text = str(value)
    if len(text) <= limit:
        return escape(text)
    return f'<span title="{escape(text)}">{escape(text[:limit])}…</span>'


def encode_parts(parts: Iterable[str]) -> list[bytes]:
    """The pieces as UTF-8; a lone surrogate (from undecodable bytes) becomes ``?``."""
    return [p.encode("utf-8", "replace") for p in parts]


# --------------------------------------------------------------------- routes


@dataclass(frozen=True)
class View:
    """What a request asks for: one instance, or the summary (filtered by ``show``)."""

    instance: str | None = None
    show: str | None = None


def instance_path(name: str) -> str:
    """The path of ``name``'s page (every character but letters, digits and ``_.-~``
    percent-encoded, so a name with ``/``, ``?`` or ``#`` in it still names itself)."""
    return "/instance/" + urllib.parse.quote(name, safe="", errors="surrogateescape")


def parse_target(target: str) -> View | None:
    """The view a request target (path and query) asks for; None: not the page's."""
    path, _, query = target.partition("?")
    if path.startswith("/instance/"):
        name = urllib.parse.unquote(path[len("/instance/") :], errors="surrogateescape")
        return View(instance=name) if name else None
    if path != "/":
        return None
    try:
        fields = urllib.parse.parse_qs(query, max_num_fields=8, errors="surrogateescape")
    except ValueError:
        return None
    if "show" in fields:
        show = fields["show"][0]
        wanted = show.upper() if show.upper() in _STATES else show
        return View(show=wanted) if wanted in SHOW else None
    return View()


# ---------------------------------------------------------------- small parts


def _mapping(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # nearly always: skip the ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> int | float | None:
    return value if type(value) is int or type(value) is float else None


def _count(value: object) -> str:
    number = _number(value)
    return _DASH if number is None else f"{number:,}" if type(number) is int else f"{number:g}"


def _duration(seconds: float) -> str:
    """A duration for people: ``850 ms``, ``12 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds != seconds or seconds < 0:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _clock(wall: float) -> str:
    """A wall-clock time in UTC, to the second (the log's timestamps can be compared)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall))
    except (OverflowError, OSError, ValueError):
        return "?"


def _when(wall: object, now: float) -> str:
    """``12 s ago`` with the UTC time as its tooltip, or a dash."""
    at = _number(wall)
    if at is None:
        return _DASH
    return f'<span title="{_clock(at)}">{_duration(now - at)} ago</span>'


def _badge(state: object) -> str:
    text = str(state) if state is not None else "?"
    kind = _STATES.get(text, "")
    return f'<span class="b {kind}">{escape(text)}</span>'


def _link(name: str) -> str:
    """A link from the summary to ``name``'s page (relative: see :func:`_base`)."""
    return f'<a href="./{escape(instance_path(name)[1:])}">{escape(name)}</a>'


def _base(view: View) -> str:
    """The summary, relative to ``view``'s page. Every link on the page is relative, so
    that a proxy can serve the page under a prefix (``/vrrpyd/``) unchanged."""
    return "../" if view.instance is not None else "./"


def _sequence(value: object) -> Sequence[Any]:
    if type(value) is list:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value
    return ()


# ---------------------------------------------------------- what an instance says


class _Facts:
    """One instance's status, read once for the page (missing or odd values tolerated)."""

    __slots__ = (
        "addresses",
        "attention",
        "carp",
        "counters",
        "faults",
        "name",
        "pending",
        "runtime",
        "state",
        "status",
        "tracking",
    )

    def __init__(self, name: str, status: Mapping[str, Any], tracking: Mapping[str, Any]) -> None:
        self.name = name
        self.status = status
        self.tracking = tracking
        self.state = str(status.get("state", "?"))
        self.counters = _mapping(status.get("counters"))
        self.runtime = _mapping(status.get("runtime"))
        self.carp = _mapping(status.get("carp"))
        self.faults = [str(f) for f in _sequence(status.get("faults"))]
        self.pending = {
            keepalived_address(a) for a in _sequence(self.runtime.get("addresses_pending"))
        }
        self.addresses = self._addresses()
        self.attention = self._attention()

    def _addresses(self) -> list[tuple[str, bool | None, bool]]:
        """(address, installed (None: unknown), wrong for the state) for each virtual address."""
        installed_doc = self.status.get("addresses_installed")
        installed: dict[str, bool] | None = None
        if isinstance(installed_doc, Mapping):
            installed = {
                keepalived_address(k): v for k, v in installed_doc.items() if type(v) is bool
            }
        listed = [keepalived_address(a) for a in _sequence(self.status.get("virtual_addresses"))]
        if not listed and installed:
            listed = list(installed)
        master = self.state == "MASTER"
        out: list[tuple[str, bool | None, bool]] = []
        for address in listed:
            on = installed.get(address) if installed is not None else None
            out.append((address, on, on is not None and on != master))
        return out

    def _attention(self) -> list[str]:
        """Why someone should look at this instance now (empty: nothing to see)."""
        why: list[str] = []
        if self.state == "FAULT":
            why.append("in FAULT")
        elif self.state not in _STATES:
            why.append(f"state {self.state}")
        elif self.state == "INIT":
            why.append("not running (INIT)")
        elif self.faults:
            why.append("fault reasons held")
        for address, on, wrong in self.addresses:
            if wrong:
                why.append(f"{address} {'still installed' if on else 'not installed'}")
        if self.pending:
            why.append("addresses pending in the kernel")
        for name, track in _mapping(self.tracking.get("tracks")).items():
            if _mapping(track).get("up") is False:
                why.append(f"track {name} down")
        for name, stats in _mapping(self.status.get("backends")).items():
            check = _mapping(stats).get("last_check")
            if isinstance(check, str) and check not in ("", "ok"):
                why.append(f"backend {name}: {check}")
        return why

    def priority(self) -> str:
        """``base / effective``; the effective one marked when tracking moved it (for
        CARP: advskew configured / sent, lower wins)."""
        if self.carp:
            return (
                f"{_count(self.carp.get('advskew'))} / {_count(self.carp.get('advskew_sent'))}"
                " <small>advskew</small>"
            )
        base = _number(self.status.get("priority"))
        effective = _number(self.status.get("effective_priority"))
        moved = base is not None and effective is not None and effective != base
        shown = f'<span class="warn">{_count(effective)}</span>' if moved else _count(effective)
        return f"{_count(base)} / {shown}"

    def master(self) -> str:
        heard = self.status.get("master_address")
        if not heard:
            return '<span class="m">none heard</span>'
        if self.state == "MASTER":
            return f"{escape(heard)} <small>(this node)</small>"
        return escape(heard)

    def address_list(self) -> str:
        if not self.addresses:
            return _NONE
        items = "".join(
            f"<li>{escape(address)} {_installed(on, wrong, address in self.pending)}</li>"
            for address, on, wrong in self.addresses
        )
        return f"<ul>{items}</ul>"

    def last_change(self, now: float) -> str:
        counters = self.counters
        at = _number(counters.get("last_transition")) or _number(self.status.get("since"))
        reason = counters.get("last_transition_reason") or ""
        text = _when(at, now)
        if reason:
            text += f": {_clip(reason, 120)}"
        return text

    def checks(self) -> str:
        """Faults, tracking and backends in a few words."""
        out: list[str] = []
        if self.faults:
            out.append(
                f'<li class="bad">{len(self.faults)} fault{"s" if len(self.faults) > 1 else ""}: '
                f"{_clip('; '.join(self.faults), 120)}</li>"
            )
        tracks = _mapping(self.tracking.get("tracks"))
        if tracks:
            down = sum(1 for t in tracks.values() if _mapping(t).get("up") is False)
            up = sum(1 for t in tracks.values() if _mapping(t).get("up") is True)
            kind = "bad" if down else "ok" if up == len(tracks) else "m"  # m: no verdict yet
            out.append(f'<li class="{kind}">tracking {up}/{len(tracks)} up</li>')
        backends = _mapping(self.status.get("backends"))
        if backends:
            bad = [
                n for n, s in backends.items() if (c := _mapping(s).get("last_check")) and c != "ok"
            ]
            if bad:
                names = escape(", ".join(map(str, bad)))
                out.append(f'<li class="bad">backend {names}: check failing</li>')
            else:
                out.append(f"<li>{len(backends)} backend{'s' if len(backends) > 1 else ''}</li>")
        if not out:
            return _NONE
        return f"<ul>{''.join(out)}</ul>"


def _installed(on: bool | None, wrong: bool, pending: bool) -> str:
    more = " <small>(pending)</small>" if pending else ""
    if on is None:
        return f'<small class="m">unknown</small>{more}'
    if wrong:
        text = "✗ installed" if on else "✗ not installed"
        return f'<span class="bad">{text}</span>{more}'
    return (
        f'<span class="ok">✓ installed</span>{more}'
        if on
        else f'<small class="m">not installed</small>{more}'
    )


# ------------------------------------------------------------------- the page


def render_page(
    snapshot: Snapshot,
    view: View,
    *,
    now: float | None = None,
    hostname: str = "",
    refresh: int = REFRESH_SECONDS,
    pause: Callable[[], None] | None = None,
) -> tuple[int, list[str]]:
    """(HTTP status, the page in pieces) for ``view`` of ``snapshot``.

    200 with the summary or the instance's page; 404 (still a page, with the
    summary's link) for an instance the snapshot does not have; 503 when the
    snapshot says the daemon could not be read (``up`` False). ``now``:
    wall-clock seconds for "12 s ago" (default: the clock).
    """
    now = time.time() if now is None else now
    if not snapshot.up:
        return 503, render_unavailable(view, hostname=hostname, refresh=refresh)
    if view.instance is not None:
        status = snapshot.instances.get(view.instance)
        if not isinstance(status, Mapping):
            return 404, _missing(view.instance, hostname, refresh)
        facts = _Facts(view.instance, status, _mapping(snapshot.tracking.get(view.instance)))
        return 200, _instance_page(facts, snapshot, now, hostname, refresh)
    return 200, _summary(snapshot, view, now, hostname, refresh, pause)


def render_unavailable(
    view: View, *, hostname: str = "", refresh: int = REFRESH_SECONDS
) -> list[str]:
    """``view``'s page when no snapshot could be taken (the metrics say ``keepalived_up 0``)."""
    return [
        _head("vrrpyd: state unavailable", refresh),
        f"{_nav(hostname, None, _base(view))}<h1>State unavailable</h1>"
        '<p class="bad">vrrpyd could not read its instances for this page; its log says why.</p>',
        _foot(None, time.time(), refresh),
    ]


def _head(title: str, refresh: int) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
    )


def _nav(hostname: str, show: str | None, base: str) -> str:
    where = f" on {escape(hostname)}" if hostname else ""
    on = ' class="on"'
    links = "".join(f'<a href="{base}?show={s}"{on if s == show else ""}>{s}</a>' for s in SHOW)
    every = on if show is None and base == "./" else ""
    return (
        f'<nav><a href="{base}"{every}><b>vrrpyd{where}</b></a> {links}'
        f'<a href="{base}metrics">metrics</a></nav>'
    )


def _foot(snapshot: Snapshot | None, now: float, refresh: int) -> str:
    parts = [f"Rendered {_clock(now)}; reloads every {int(refresh)} s."]
    if snapshot is not None:
        if snapshot.version:
            parts.append(f"vrrpy {escape(snapshot.version)}")
        if snapshot.pid is not None:
            parts.append(f"pid {snapshot.pid}")
        if snapshot.start_time is not None:
            parts.append(f"up {_duration(now - snapshot.start_time)}")
        realtime = snapshot.realtime
        if realtime is not None:
            parts.append(f"scheduling {escape(realtime.get('policy', '?'))}")
            exceeded = _number(realtime.get("rttime_exceeded"))
            if exceeded:
                parts.append(f'<span class="bad">real-time budget exceeded: {exceeded}</span>')
        if snapshot.state_file_errors:
            parts.append(
                f'<span class="bad">state file write errors: {snapshot.state_file_errors}</span>'
            )
    return f"<footer>{' · '.join(parts)}</footer></body></html>\n"


def _missing(name: str, hostname: str, refresh: int) -> list[str]:
    return [
        _head("vrrpyd: no such instance", refresh),
        f"{_nav(hostname, None, '../')}<h1>No instance {escape(name)}</h1>"
        '<p>This daemon runs no instance of that name (now). <a href="../">All instances</a>.</p>',
        _foot(None, time.time(), refresh),
    ]


# ------------------------------------------------------------------ the summary

_SUMMARY_HEAD: Final = (
    '<div class="w"><table class="s"><thead><tr><th>instance</th><th>state</th>'
    "<th>priority <small>base / effective</small></th><th>master heard</th>"
    "<th>virtual addresses</th><th>last change</th><th>checks</th></tr></thead><tbody>"
)


def _summary(
    snapshot: Snapshot,
    view: View,
    now: float,
    hostname: str,
    refresh: int,
    pause: Callable[[], None] | None,
) -> list[str]:
    counts: dict[str, int] = {}
    attention: list[str] = []
    rows: list[str] = []
    pieces: list[str] = []
    shown = 0
    tracking = snapshot.tracking
    for n, (name, status) in enumerate(snapshot.instances.items(), 1):
        if pause is not None and n % PAUSE_EVERY == 0:
            pause()
        if not isinstance(status, Mapping):
            continue
        name = str(name)
        facts = _Facts(name, status, _mapping(tracking.get(name)))
        counts[facts.state] = counts.get(facts.state, 0) + 1
        if facts.attention:
            attention.append(name)
        show = view.show
        if show is not None and (
            facts.state != show if show != "attention" else not facts.attention
        ):
            continue
        shown += 1
        rows.append(_row(facts, now))
        if len(rows) == ROWS_PER_PIECE:
            pieces.append("".join(rows))
            rows.clear()
    if rows:
        pieces.append("".join(rows))
    total = sum(counts.values())
    states = " · ".join(
        f'<a href="./?show={s}">{counts.get(s, 0)} {s}</a>'
        for s in ("MASTER", "BACKUP", "FAULT", "INIT")
    )
    others = sum(v for k, v in counts.items() if k not in _STATES)
    if others:
        states += f" · {others} other"
    title_counts = ", ".join(
        f"{counts[s]} {s}" for s in ("MASTER", "BACKUP", "FAULT", "INIT") if counts.get(s)
    )
    title = f"vrrpyd{' ' + hostname if hostname else ''}: {title_counts or 'no instances'}"
    head = [
        _head(title, refresh),
        _nav(hostname, view.show, "./"),
        f"<h1>{total} instance{'' if total == 1 else 's'}</h1><p>{states}</p>",
    ]
    if attention:
        listed = ", ".join(_link(a) for a in attention[:20])
        more = f" and {len(attention) - 20} more" if len(attention) > 20 else ""
        head.append(
            f'<p class="bad">Needs attention: {len(attention)} '
            f'(<a href="./?show=attention">show only these</a>): {listed}{more}</p>'
        )
    else:
        head.append('<p class="ok">Nothing needs attention.</p>')
    if view.show is not None:
        head.append(
            f'<p class="note">Showing {shown} of {total}: {escape(view.show)}. '
            '<a href="./">All</a>.</p>'
        )
    head.append(_groups(snapshot.sync_groups))
    head.append(_SUMMARY_HEAD)
    if not pieces:
        pieces.append('<tr><td colspan="7" class="m">none</td></tr>')
    return ["".join(head), *pieces, "</tbody></table></div>", _foot(snapshot, now, refresh)]


def _row(facts: _Facts, now: float) -> str:
    status = facts.status
    where = status.get("address_interface") or status.get("interface") or "?"
    protocol = "CARP VHID" if facts.carp else "VRID"
    in_state = _number(status.get("in_state_seconds"))
    stay = f"<br><small>for {_duration(in_state)}</small>" if in_state is not None else ""
    mark = ' class="att"' if facts.attention else ""
    return (
        f"<tr{mark}><td>{_link(facts.name)}<br><small>{protocol} {escape(status.get('vrid', '?'))}"
        f" · {escape(where)}</small></td>"
        f"<td>{_badge(facts.state)}{stay}</td>"
        f"<td>{facts.priority()}</td>"
        f"<td>{facts.master()}</td>"
        f"<td>{facts.address_list()}</td>"
        f"<td>{facts.last_change(now)}</td>"
        f"<td>{facts.checks()}</td></tr>"
    )


def _groups(groups: Mapping[str, Mapping[str, Any]]) -> str:
    if not groups:
        return ""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{_badge(_mapping(doc).get('state'))}</td>"
        f"<td>{', '.join(_link(str(m)) for m in _sequence(_mapping(doc).get('members')))}</td>"
        f"<td>{_clip(_mapping(doc).get('last_reason') or '', 120)}</td></tr>"
        for name, doc in groups.items()
    )
    return (
        '<h2>Sync groups</h2><div class="w"><table><thead><tr><th>group</th><th>state</th>'
        f"<th>members</th><th>last change</th></tr></thead><tbody>{rows}</tbody></table></div>"
        "<h2>Instances</h2>"
    )


# ------------------------------------------------------------ one instance

_COUNTERS: Final = (
    ("adverts_sent", "adverts sent"),
    ("adverts_received", "adverts received"),
    ("became_master", "became MASTER"),
    ("released_master", "left MASTER"),
    ("transitions", "state changes"),
    ("priority_zero_sent", "priority 0 sent (resigned)"),
    ("priority_zero_received", "priority 0 received"),
    ("split_brains", "split brains (weaker Master heard)"),
    ("lower_priority_discarded", "weaker adverts ignored"),
    ("checksum_pseudo_header", "IPv4 v3 checksums with pseudo-header"),
    ("checksum_vrrp_only", "IPv4 v3 checksums without"),
)

_RUNTIME: Final = (
    ("announcements_sent", "announcements sent (GARP / NA)"),
    ("announcements_failed", "announcements failed"),
    ("address_add_failures", "address adds refused"),
    ("address_remove_failures", "address removals refused"),
    ("action_errors", "actions that raised"),
    ("stall_holds", "takeovers held after a stall"),
)

_BACKEND: Final = (
    ("calls", "calls"),
    ("failures", "failures"),
    ("timeouts", "timeouts"),
    ("refusals", "refusals of MASTER"),
    ("cancelled", "cancelled"),
    ("checks", "checks"),
    ("check_failures", "check failures"),
)


def _instance_page(
    facts: _Facts, snapshot: Snapshot, now: float, hostname: str, refresh: int
) -> list[str]:
    name = facts.name
    parts = [
        _head(f"{name} {facts.state} · vrrpyd{' ' + hostname if hostname else ''}", refresh),
        _nav(hostname, None, "../"),
        f"<h1>{escape(name)} {_badge(facts.state)}</h1>",
    ]
    if facts.attention:
        parts.append(
            '<p class="bad">Needs attention: '
            + "; ".join(_clip(a, 160) for a in facts.attention)
            + "</p>"
        )
    parts.append(_overview(facts, now))
    parts.append(_address_table(facts))
    parts.append(_transitions(facts, now))
    parts.append(_tracks(facts))
    parts.append(_backends(facts))
    parts.append(_counters(facts))
    parts.append(_foot(snapshot, now, refresh))
    return parts


def _dl(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _overview(facts: _Facts, now: float) -> str:
    status = facts.status
    pairs: list[tuple[str, str]] = []
    protocol = str(status.get("protocol") or "vrrp")
    pairs.append(("protocol", escape(protocol.upper())))
    pairs.append(("VHID" if facts.carp else "VRID", escape(status.get("vrid", "?"))))
    pairs.append(("interface", escape(status.get("interface", "?"))))
    where = status.get("address_interface")
    if where and where != status.get("interface"):
        pairs.append(("addresses on", escape(where)))
    since = _number(status.get("since"))
    in_state = _number(status.get("in_state_seconds"))
    if since is not None or in_state is not None:
        text = _duration(in_state) if in_state is not None else _duration(now - (since or now))
        pairs.append(
            ("in this state", f"{text}{' since ' + _clock(since) if since is not None else ''}")
        )
    base, effective = _count(status.get("priority")), _count(status.get("effective_priority"))
    pairs.append(("priority base / effective", f"{base} / {effective}"))
    if facts.carp:
        carp = facts.carp
        pairs.append(
            (
                "advskew configured / sent",
                f"{_count(carp.get('advskew'))} / {_count(carp.get('advskew_sent'))}",
            )
        )
        pairs.append(("advbase", f"{_count(carp.get('advbase'))} s"))
        pairs.append(("demotion", _count(carp.get("demote"))))
        if carp.get("profile"):
            pairs.append(("profile", escape(carp.get("profile"))))
    pairs.append(("master heard", facts.master()))
    group = status.get("sync_group")
    if group:
        pairs.append(("sync group", escape(group)))
    if facts.faults:
        pairs.append(
            (
                "faults",
                '<ul class="bad">'
                + "".join(f"<li>{_clip(f)}</li>" for f in facts.faults)
                + "</ul>",
            )
        )
    else:
        pairs.append(("faults", '<span class="m">none</span>'))
    garp = _number(status.get("garp_delay"))
    if garp is not None:
        pairs.append(("second GARP burst after", f"{garp:g} s"))
    return _dl(pairs)


def _address_table(facts: _Facts) -> str:
    known = "addresses_installed" in facts.status
    rows = "".join(
        f"<tr><td>{escape(a)}</td><td>{_installed(on, wrong, a in facts.pending)}</td></tr>"
        for a, on, wrong in facts.addresses
    )
    if not rows:
        rows = '<tr><td colspan="2" class="m">none listed</td></tr>'
    note = (
        ""
        if known
        else '<p class="note">Whether they are on the interface is unknown: '
        "this daemon did not say.</p>"
    )
    return (
        "<h2>Virtual addresses</h2><table><thead><tr><th>address</th>"
        f"<th>on the interface</th></tr></thead><tbody>{rows}</tbody></table>{note}"
    )


def _transitions(facts: _Facts, now: float) -> str:
    counters = facts.counters
    out = ["<h2>Transitions</h2>"]
    at = _number(counters.get("last_transition"))
    reason = counters.get("last_transition_reason") or ""
    if at is not None or reason:
        out.append(
            _dl(
                [
                    (
                        "last",
                        f"{_when(at, now)} <small>{_clock(at) if at is not None else ''}</small>",
                    ),
                    ("reason", _clip(reason) if reason else _NONE),
                ]
            )
        )
    else:
        out.append('<p class="m">None yet.</p>')
    recent = [_mapping(r) for r in _sequence(facts.status.get("recent_transitions"))]
    if recent:
        rows = "".join(
            f"<tr><td>{_when(r.get('at'), now)}</td><td>{escape(r.get('from', '?'))} → "
            f"{escape(r.get('to', '?'))}</td><td>{escape(r.get('code', ''))}</td>"
            f"<td>{_clip(r.get('reason', ''))}</td></tr>"
            for r in reversed(recent)
        )
        out.append(
            '<h3>Latest</h3><div class="w"><table><thead><tr><th>when</th><th>change</th>'
            f"<th>code</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    by = [
        (str(old), str(new), str(code), n)
        for old, news in _mapping(counters.get("transitions_by")).items()
        for new, codes in _mapping(news).items()
        for code, n in _mapping(codes).items()
    ]
    if by:
        rows = "".join(
            f"<tr><td>{escape(o)} → {escape(n)}</td><td>{escape(c)}</td>"
            f'<td class="n">{_count(k)}</td></tr>'
            for o, n, c, k in by
        )
        out.append(
            "<h3>By change and reason</h3><table><thead><tr><th>change</th><th>code</th>"
            f'<th class="n">times</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return "".join(out)


def _tracks(facts: _Facts) -> str:
    tracks = _mapping(facts.tracking.get("tracks"))
    if not tracks:
        return '<h2>Tracking</h2><p class="m">Nothing tracked.</p>'
    rows = []
    for name, doc in tracks.items():
        track = _mapping(doc)
        up = track.get("up")
        verdict = (
            '<span class="ok">up</span>'
            if up is True
            else '<span class="bad">down</span>'
            if up is False
            else '<span class="m">no verdict yet</span>'
        )
        weight = _number(track.get("weight"))
        effect = (
            "FAULT when down"
            if weight == 0
            else f"weight {weight:+g}"
            if weight is not None
            else "?"
        )
        if track.get("reverse"):
            effect += ", reversed"
        detail = _agent(_mapping(track.get("agent")))
        value = (
            ""
            if track.get("kind") != "file"
            else f" <small>value {_count(track.get('value'))}</small>"
        )
        rows.append(
            f"<tr><td>{escape(name)}<br><small>{escape(track.get('kind', '?'))}</small></td>"
            f"<td>{verdict}{value}<br><small>{effect}</small></td>"
            f"<td>{_clip(track.get('reason', ''))}{detail}</td></tr>"
        )
    return (
        '<h2>Tracking</h2><div class="w"><table><thead><tr><th>object</th><th>verdict</th>'
        f"<th>why</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _agent(agent: Mapping[str, Any]) -> str:
    """A tracked object's figures from the agent: a script's runs and last output, ping targets."""
    if not agent:
        return ""
    bits: list[str] = []
    if "runs" in agent:
        bits.append(f"runs {_count(agent.get('runs'))}")
    if _number(agent.get("skipped")):
        bits.append(f"skipped {_count(agent.get('skipped'))}")
    last = _mapping(agent.get("last"))
    if last:
        outcome = last.get("outcome", "exit")
        bits.append(
            f"last {escape(outcome)} {_count(last.get('status'))}"
            f" in {_duration(_number(last.get('runtime')) or 0.0)}"
        )
        if last.get("output"):
            bits.append(f"output: <q>{_clip(last.get('output'), 200)}</q>")
    for address, doc in _mapping(agent.get("targets")).items():
        target = _mapping(doc)
        rtt = _number(target.get("rtt"))
        state = "reachable" if target.get("reachable") else "unreachable"
        bits.append(
            f"{escape(address)} {state}"
            f"{f' {rtt * 1000:.2f} ms' if rtt is not None else ''}"
            f" ({_count(target.get('received'))}/{_count(target.get('sent'))})"
        )
    if "operstate" in agent:
        bits.append(f"link {escape(agent.get('operstate'))}")
    return f"<br><small>{' · '.join(bits)}</small>" if bits else ""


def _backends(facts: _Facts) -> str:
    backends = _mapping(facts.status.get("backends"))
    if not backends:
        return '<h2>Backends</h2><p class="m">None.</p>'
    out = ["<h2>Backends</h2>"]
    for name, doc in backends.items():
        stats = _mapping(doc)
        pairs = [(label, _count(stats.get(key))) for key, label in _BACKEND if key in stats]
        if stats.get("last_phase"):
            pairs.append(
                (
                    "last step",
                    f"{escape(stats.get('last_phase'))} to {escape(stats.get('last_state', '?'))}"
                    f" in {_duration(_number(stats.get('last_seconds')) or 0.0)}",
                )
            )
        check = stats.get("last_check")
        if check:
            kind = "ok" if check == "ok" else "bad"
            pairs.append(("last check", f'<span class="{kind}">{_clip(check)}</span>'))
        if stats.get("last_error"):
            pairs.append(
                ("last error", f'<span class="bad">{_clip(stats.get("last_error"))}</span>')
            )
        if "status" in stats:
            pairs.append(("its status", _nested(stats.get("status"), 0)))
        out.append(f"<h3>{escape(name)}</h3>{_dl(pairs)}")
    return "".join(out)


def _nested(value: object, depth: int) -> str:
    """A backend's own status (an IPVS pool's real servers...), whatever its shape."""
    if isinstance(value, Mapping):
        if depth >= 3:
            return '<span class="m">…</span>'
        items = list(value.items())
        pairs = [(escape(k), _nested(v, depth + 1)) for k, v in items[:NESTED_LIMIT]]
        if len(items) > NESTED_LIMIT:
            pairs.append(("…", f"{len(items) - NESTED_LIMIT} more"))
        return _dl(pairs) if pairs else _NONE
    if isinstance(value, (list, tuple)):
        if depth >= 3:
            return '<span class="m">…</span>'
        shown = [_nested(v, depth + 1) for v in value[:NESTED_LIMIT]]
        if len(value) > NESTED_LIMIT:
            shown.append(f"… {len(value) - NESTED_LIMIT} more")
        return "<ul>" + "".join(f"<li>{s}</li>" for s in shown) + "</ul>" if shown else _DASH
    if value is None:
        return _NONE
    if type(value) is bool:
        return "yes" if value else "no"
    return _clip(value)


def _counters(facts: _Facts) -> str:
    counters = facts.counters
    rows = [(label, counters.get(key)) for key, label in _COUNTERS if key in counters]
    rows += [(label, facts.runtime.get(key)) for key, label in _RUNTIME if key in facts.runtime]
    out = ["<h2>Counters</h2>"]
    if rows:
        out.append(_table(("counter", "count"), ((escape(label), _count(v)) for label, v in rows)))
    for key, title in (("drops", "Adverts dropped"), ("anomalies", "Adverts with anomalies")):
        reasons = _mapping(counters.get(key))
        if reasons:
            out.append(f"<h3>{title}</h3>")
            out.append(
                _table(("reason", "count"), ((escape(r), _count(n)) for r, n in reasons.items()))
            )
    histograms = _mapping(facts.status.get("histograms"))
    summary = []
    for key, label in (
        ("takeover_seconds", "takeovers"),
        ("advert_interarrival_seconds", "advert intervals heard"),
    ):
        doc = _mapping(histograms.get(key))
        count, total = _number(doc.get("count")), _number(doc.get("sum"))
        if count:
            summary.append((label, f"{_count(count)}, mean {_duration((total or 0.0) / count)}"))
    if summary:
        out.append(f"<h3>Timings</h3>{_dl(summary)}")
    if not rows and len(out) == 1:
        out.append('<p class="m">None.</p>')
    out.append(
        '<p class="note">Counters count from the instance\'s (re)start; '
        "/metrics keeps them across reloads.</p>"
    )
    return "".join(out)


def _table(columns: tuple[str, str], rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><td>{k}</td><td class="n">{v}</td></tr>' for k, v in rows)
    return (
        f'<table><thead><tr><th>{columns[0]}</th><th class="n">{columns[1]}</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
