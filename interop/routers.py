"""One face for both implementations: start, state, kill, stop, complaints."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keepalived import Keepalived

from vrrpy.lab import Daemon, Host


class Router:
    """A vrrpyd or a keepalived in a lab host, driven the same way by the scenarios."""

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
        if impl == "vrrpy":
            self.vrrpyd: Daemon | None = Daemon(host, workdir, instances, tables)
            self.keepalived: Keepalived | None = None
        else:
            self.vrrpyd = None
            self.keepalived = Keepalived(host, workdir, instances, tables)

    def __repr__(self) -> str:
        return f"{self.impl}@{self.host.name}"

    def start(self) -> Router:
        if self.vrrpyd is not None:
            self.vrrpyd.start()
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
        assert self.keepalived is not None
        return self.keepalived.state(name)

    def counters(self, name: str = "VI_1") -> dict[str, Any]:
        """vrrpy's counters (fresh); keepalived keeps its own and is judged by its log."""
        assert self.vrrpyd is not None
        self.vrrpyd.refresh()
        return dict(self.vrrpyd.instance(name)["counters"])

    def kill(self) -> None:
        """SIGKILL and link down: the Master vanishes without a word."""
        if self.vrrpyd is not None:
            self.vrrpyd.kill()
        else:
            assert self.keepalived is not None
            self.keepalived.kill()
        self.host.link(False)

    def stop(self) -> None:
        """SIGTERM: a graceful stop (priority 0 from a Master)."""
        if self.vrrpyd is not None:
            self.vrrpyd.signal(signal.SIGTERM)
            assert self.vrrpyd.proc is not None
            self.vrrpyd.proc.wait(10)
        else:
            assert self.keepalived is not None
            self.keepalived.terminate()

    def complaints(self) -> list[str]:
        """What this router logged against the other's adverts."""
        if self.keepalived is not None:
            return self.keepalived.complaints()
        return []

    def addresses(self) -> str:
        return self.host.run(["ip", "-o", "addr"]).stdout
