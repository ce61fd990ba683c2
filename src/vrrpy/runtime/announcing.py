"""When a Master tells the LAN where its addresses are: keepalived's schedule, vrrpy's timing.

On becoming Master (and when a split brain ends: the core asks again), the
first gratuitous ARP / unsolicited NA set leaves at once, in the same turn of
the loop as the advert, from frames built when the instance started. Then,
as keepalived does with its defaults:

* ``garp_repeat`` sets in all, ``garp_interval`` apart (``garp_master_repeat`` 5,
  ``vrrp_garp_interval`` 0);
* the same burst again ``garp_delay`` seconds later (``garp_master_delay`` 5 s;
  0: none): switches and hosts that missed the first, or flushed it while the
  old Master's frames were still in flight, learn it then;
* while Master, ``garp_refresh_repeat`` sets every ``garp_refresh`` seconds
  (``garp_master_refresh``, 0: never, keepalived's default).

Every later send checks that the instance is still Master: a router that lost
the election in between never announces addresses it no longer holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vrrpy.codec.vrrp import IPAddress
from vrrpy.runtime.spec import InstanceSpec

logger = logging.getLogger("vrrpy.runtime")


class Announcements:
    """The announcement schedule of one instance."""

    def __init__(
        self,
        spec: InstanceSpec,
        loop: asyncio.AbstractEventLoop,
        announcer: Any,
        mac: str,
        still_master: Callable[[], bool],
    ) -> None:
        self.spec = spec
        self.loop = loop
        self.announcer = announcer
        self.mac = mac
        self.still_master = still_master
        self.sent = 0
        """Frames handed to the kernel."""
        self.failed = 0
        """Frames the kernel refused (the interface down, its queue full)."""
        self._frames: dict[tuple[IPAddress, ...], tuple[bytes, ...]] = {}
        self._handles: list[asyncio.TimerHandle] = []

    def prepare(self, addresses: tuple[IPAddress, ...]) -> None:
        """Build the frames for ``addresses`` now, so that a takeover only sends them."""
        if addresses not in self._frames:
            self._frames[addresses] = self.announcer.frames(addresses, self.mac)

    def start(self, addresses: tuple[IPAddress, ...]) -> None:
        """Announce ``addresses`` now, then on keepalived's schedule (see the module)."""
        self.cancel()
        frames = self._frames.get(addresses)
        if frames is None:
            self.prepare(addresses)
            frames = self._frames[addresses]
        spec = self.spec
        self._send(frames)
        now = self.loop.time()
        self._burst(now, frames, spec.garp_repeat, first_sent=True)
        if spec.garp_delay > 0 and spec.garp_repeat > 0:
            self._burst(now + spec.garp_delay, frames, spec.garp_repeat, first_sent=False)
        if spec.garp_refresh > 0:
            self._later(now + spec.garp_refresh, self._refresh, frames)

    def _burst(self, start: float, frames: tuple[bytes, ...], sets: int, first_sent: bool) -> None:
        interval = self.spec.garp_interval
        for k in range(1 if first_sent else 0, sets):
            self._later(start + k * interval, self._send_if_master, frames)

    def _refresh(self, frames: tuple[bytes, ...]) -> None:
        if not self.still_master():
            return
        now = self.loop.time()
        self._burst(now, frames, self.spec.garp_refresh_repeat, first_sent=False)
        self._later(now + self.spec.garp_refresh, self._refresh, frames)

    def _later(
        self, when: float, callback: Callable[[tuple[bytes, ...]], None], frames: Any
    ) -> None:
        handles = self._handles
        if len(handles) > 64:
            handles[:] = [h for h in handles if not h.cancelled() and h.when() > self.loop.time()]
        handles.append(self.loop.call_at(when, callback, frames))

    def _send_if_master(self, frames: tuple[bytes, ...]) -> None:
        if self.still_master():
            self._send(frames)

    def _send(self, frames: tuple[bytes, ...]) -> None:
        sent = self.announcer.send_frames(frames)
        self.sent += sent
        if sent < len(frames):
            self.failed += len(frames) - sent
            logger.debug(
                "%s: %d of %d announcements refused: %s",
                self.spec.name,
                len(frames) - sent,
                len(frames),
                getattr(self.announcer, "last_error", None),
            )

    def cancel(self) -> None:
        """Forget every scheduled send (leaving Master, or a new burst replaces them)."""
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
