"""The drill's output: one table a person reads at a glance, and the same as JSON.

The table has a line per instance and phase of each scenario: what the client
lived through (its outage, from its probes; when its neighbour entry moved,
and to which router), what RFC 9568 and the user's settings predict, whether
the two agree, and which settings would shorten it. Below it: what each
prediction is made of, the figures that do not fit in a column, and what the
lab did differently from the file.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from vrrpy.drill.plan import DrillPlan
from vrrpy.drill.predict import InstanceModel
from vrrpy.drill.scenarios import Row

__all__ = ["render_json", "render_table"]

ADVICE_WIDTH = 60


def outage_text(row: Row) -> str:
    if row.outage is None:
        return "-"
    if row.still_out:
        return f">= {row.outage:.3f} s (still out)"
    if row.lost == 0:
        return "none"
    return f"{row.outage:.3f} s"


def moved_text(row: Row) -> str:
    if row.moved is None:
        return "-" if row.outage is None else "stayed"
    seconds, where = row.moved
    if seconds < 0:
        return f"at once -> {where}"
    return f"+{seconds:.3f} s -> {where}"


def predicted_text(row: Row) -> str:
    text = row.expectation.text()
    if row.exact is not None:
        return f"{row.exact:.3f} s ({text})"
    if row.expectation.takeover is not None and row.phase == "back":
        low, high = row.expectation.takeover
        return f"0 (back at {low:.1f}-{high:.1f} s)"
    return text


def _where(rows: Sequence[Row], index: int) -> str:
    """A row's name for a back-reference: its scenario, phase and instance."""
    row = rows[index]
    label = row.label.strip()
    if row.label.startswith(" "):
        label = f"{_scenario_of(rows, index)}, {label}"
    return f"{label}, {row.instance}"


def _scenario_of(rows: Sequence[Row], index: int) -> str:
    for row in reversed(rows[: index + 1]):
        if not row.label.startswith(" "):
            return row.label
    return ""


def describe_instances(models: Mapping[str, InstanceModel]) -> list[str]:
    lines = []
    for name, model in models.items():
        r1, r2 = model.sides["r1"], model.sides["r2"]
        extra = []
        if model.unicast:
            extra.append("unicast")
        if model.use_vmac:
            extra.append("VMAC")
        if not r1.preempt or not r2.preempt:
            extra.append("no preempt")
        shown = []
        for side in (r1, r2):
            effective = model.priority(side.router)
            text = f"{side.router} {side.priority}"
            shown.append(text if effective == side.priority else f"{text} ({effective} tracked)")
        lines.append(
            f"  {name}: VRRPv{model.version}, advert_interval {model.interval:g} s, "
            f"priority {' / '.join(shown)}" + (f", {', '.join(extra)}" if extra else "")
        )
    return lines


def render_table(
    plan: DrillPlan,
    models: Mapping[str, InstanceModel],
    rows: Sequence[Row],
    origin: str,
    wall: float,
) -> str:
    """The report as text."""
    out = [f"vrrpy drill: {plan.source} ({origin})", *describe_instances(models), ""]
    out.append("The lab (what differs from the file):")
    out.extend(
        textwrap.fill(str(note), 100, initial_indent="  ", subsequent_indent="    ")
        for note in plan.notes
    )
    out.append("")
    header = (
        "scenario",
        "instance",
        "client outage",
        "neighbour moved",
        "predicted",
        "result",
        "advice",
    )
    cells: list[list[list[str]]] = []
    given: dict[tuple[str, ...], int] = {}
    for index, row in enumerate(rows):
        advice: list[str] = []
        first = given.setdefault(tuple(row.advice), index)
        if row.advice and first != index:
            advice = [f"(as above: {_where(rows, first)})"]
        for item in row.advice if not advice else ():
            wrapped = textwrap.wrap(item, ADVICE_WIDTH) or [""]
            advice.extend(["- " + wrapped[0], *("  " + w for w in wrapped[1:])])
        cells.append(
            [
                [row.label],
                [row.instance],
                [outage_text(row)],
                [moved_text(row)],
                [predicted_text(row)],
                [row.verdict],
                advice or [""],
            ]
        )
    widths = [
        max([len(header[i])] + [len(line) for c in cells for line in c[i]])
        for i in range(len(header) - 1)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) for i, v in enumerate(values[:-1])]
        return "  ".join([*parts, values[-1]]).rstrip()

    out.append(line(header))
    out.append(line(["-" * w for w in widths] + ["-" * len(header[-1])]))
    for cell in cells:
        height = max(len(c) for c in cell)
        for k in range(height):
            out.append(line([c[k] if k < len(c) else "" for c in cell]))
    out.append("")
    out.append("What the predictions are made of:")
    bases: dict[tuple[str, str], list[str]] = {}
    for index, row in enumerate(rows):
        if row.expectation.basis:
            label = row.label.strip()
            if row.label.startswith(" "):
                label = f"{_scenario_of(rows, index)}: {label}"
            labels = bases.setdefault((row.instance, row.expectation.basis), [])
            if label not in labels:
                labels.append(label)
    for (instance, basis), labels in bases.items():
        out.append(
            textwrap.fill(
                f"{'; '.join(labels)} ({instance}): {basis}",
                100,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
    details = []
    told: set[tuple[str, str]] = set()
    for row in rows:
        for detail in row.detail:
            if (row.instance, detail) not in told:
                told.add((row.instance, detail))
                details.append((row, detail))
    if details:
        out.append("")
        out.append("Details:")
        for row, detail in details:
            out.append(
                textwrap.fill(
                    f"{row.label.strip()}, {row.instance}: {detail}",
                    100,
                    initial_indent="  ",
                    subsequent_indent="    ",
                )
            )
    out.append("")
    out.append(f"{len(rows)} rows in {wall:.1f} s; the lab is gone.")
    return "\n".join(out)


def render_json(
    plan: DrillPlan,
    models: Mapping[str, InstanceModel],
    rows: Sequence[Row],
    origin: str,
    wall: float,
) -> str:
    """The report as one JSON document."""
    document: dict[str, Any] = {
        "config": plan.source,
        "origin": origin,
        "links": [
            {"user": link.user, "lab": link.lab, "ipv4": str(link.ipv4), "ipv6": str(link.ipv6)}
            for link in plan.links
        ],
        "address_map": plan.address_map,
        "notes": [{"key": n.key, "text": n.text} for n in plan.notes],
        "instances": {
            name: {
                "version": m.version,
                "advert_interval": m.interval,
                "priorities": {r: s.priority for r, s in m.sides.items()},
                "preempt": {r: s.preempt for r, s in m.sides.items()},
            }
            for name, m in models.items()
        },
        "rows": [row.to_json() for row in rows],
        "wall_time_s": round(wall, 3),
    }
    return json.dumps(document, indent=2)
