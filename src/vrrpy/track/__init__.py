"""Tracking: interfaces, scripts, files, ping targets and processes move a priority or fault.

Three layers, as everywhere in vrrpy:

* :mod:`vrrpy.track.model`: sans-IO. Verdicts in; effective priority
  (keepalived's clamping) and fault reasons out, per instance.
* :mod:`vrrpy.track.agent`: the child process that runs every check (never the
  real-time protocol loop), one module per kind: :mod:`~vrrpy.track.link`,
  :mod:`~vrrpy.track.script`, :mod:`~vrrpy.track.file`,
  :mod:`~vrrpy.track.ping`, :mod:`~vrrpy.track.process`; it speaks the line
  protocol of :mod:`vrrpy.track.protocol`.
* :mod:`vrrpy.track.client`: the daemon's side, a non-blocking pipe reader
  for the asyncio loop that turns lines into callbacks.

See docs/tracking.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrrpy.track.model import (
    InstanceTracking,
    Kind,
    ScriptCounter,
    Track,
    TrackedRouter,
    TrackingChange,
    Verdict,
    apply_change,
    clamp_priority,
    contribution,
)
from vrrpy.track.protocol import (
    CheckSpec,
    ConfigError,
    FileSpec,
    InterfaceSpec,
    PingSpec,
    ProcessSpec,
    ScriptSpec,
    spec_from_json,
)

if TYPE_CHECKING:
    from vrrpy.track.client import Tracking, TrackingAgent


def __getattr__(name: str) -> Any:
    """The daemon's side (asyncio, subprocess) is imported on first use, so that the
    model can be used by the simulator and by tests without pulling in asyncio."""
    if name in ("Tracking", "TrackingAgent"):
        from vrrpy.track import client

        return getattr(client, name)
    raise AttributeError(name)


__all__ = [
    "CheckSpec",
    "ConfigError",
    "FileSpec",
    "InstanceTracking",
    "InterfaceSpec",
    "Kind",
    "PingSpec",
    "ProcessSpec",
    "ScriptCounter",
    "ScriptSpec",
    "Track",
    "TrackedRouter",
    "Tracking",
    "TrackingAgent",
    "TrackingChange",
    "Verdict",
    "apply_change",
    "clamp_priority",
    "contribution",
    "spec_from_json",
]
