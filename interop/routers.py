"""One face for every implementation: start, state, kill, stop, complaints.

``impl`` is ``"vrrpy"`` (vrrpyd, VRRP or CARP), ``"keepalived"`` (VRRP) or
``"ucarp"`` (CARP: one instance with ``protocol = "carp"``, one IPv4 address).
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keepalived import Keepalived
from ucarp import Ucarp

from vrrpy.lab import Daemon, Host


class Router:
    """A vrrpyd, a keepalived or a ucarp in a lab host, driven the same way by the scenarios."""

    def __init__(
        self,
        impl: str,
        host: Host,
        workdir: Path,
        instances: list[dict[str, Any]],
        tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
    ):
        """``tables``: vrrpyd's other arrays of tables (``track_script``), which the
        keepalived harness translates into its own blocks."""
        self.impl = impl
        self.host = host
        self.instances = instances
        self.vrrpyd: Daemon | None = None
        self.keepalived: Keepalived | None = None
        self.ucarp: Ucarp | None = None
        if impl == "vrrpy":
            self.vrrpyd = Daemon(host, workdir, instances, tables)
        elif impl == "ucarp":
            if tables:
                raise ValueError(f"ucarp harness: no translation for {sorted(tables)}")
            self.ucarp = Ucarp(host, workdir, instances)
        else:
            self.keepalived = Keepalived(host, workdir, instances, tables)

    def __repr__(self) -> str:
        return f"{self.impl}@{self.host.name}"

    def start(self) -> Router:
        if self.vrrpyd is not None:
            self.vrrpyd.start()
        elif self.ucarp is not None:
            self.ucarp.start()
        else:
            assert self.keepalived is not None
            self.keepalived.start()
        return self

    def state(self, name: str = "VI_1") -> str:
        if self.vrrpyd is not None:
            try:
                return str(self.vrrpyd.instance(name)["state"])
            except KeyError:
                return "INIT"
        if self.ucarp is not None:
            return self.ucarp.state()  # one virtual host per ucarp: the name is moot
        assert self.keepalived is not None
        return self.keepalived.state(name)

    def counters(self, name: str = "VI_1") -> dict[str, Any]:
        """vrrpy's counters (fresh); keepalived and ucarp keep their own and are judged by
        their logs."""
        assert self.vrrpyd is not None
        self.vrrpyd.refresh()
        return dict(self.vrrpyd.instance(name)["counters"])

    def kill(self) -> None:
        """SIGKILL and link down: the Master vanishes without a word."""
        if self.vrrpyd is not None:
            self.vrrpyd.kill()
        elif self.ucarp is not None:
            self.ucarp.kill()
        else:
            assert self.keepalived is not None
            self.keepalived.kill()
        self.host.link(False)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """A graceful stop, SIGTERM unless told: priority 0 from a VRRP Master, the bow-out
        from a vrrpy CARP Master; ucarp sends nothing (with ``shutdown`` it runs its down
        script first)."""
        if self.vrrpyd is not None:
            self.vrrpyd.signal(sig)
            assert self.vrrpyd.proc is not None
            self.vrrpyd.proc.wait(10)
        elif self.ucarp is not None:
            self.ucarp.terminate(sig)
        else:
            assert self.keepalived is not None
            self.keepalived.terminate()

    def complaints(self) -> list[str]:
        """What this router logged against the other's adverts."""
        if self.keepalived is not None:
            return self.keepalived.complaints()
        if self.ucarp is not None:
            return self.ucarp.complaints()
        return []

    def addresses(self) -> str:
        return self.host.run(["ip", "-o", "addr"]).stdout
