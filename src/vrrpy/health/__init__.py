"""Real-server health checks (keepalived 2.x's checkers, ldirectord's checks), as a library.

The same three layers as tracking (:mod:`vrrpy.track`):

* :mod:`vrrpy.health.model`: the frozen check specs (TCP, HTTP / HTTPS, DNS,
  MISC) with keepalived's key names and defaults;
* :mod:`vrrpy.health.state`: sans-IO. Each check's up/down state machine
  (``retry``, ``delay_before_retry``, ``alpha``, ``rise``, a history ring) and
  each real server's health, driven by results and a clock passed in;
* :mod:`vrrpy.health.checks` (one attempt on asyncio, bounded by its
  timeout), :mod:`vrrpy.health.runner` (thousands of checks on one loop,
  spread over their intervals) and :mod:`vrrpy.health.agent` (the runner in a
  child process, so that vrrpyd's protocol loop never runs a check, and the
  daemon's side of its pipe).

What comes out is the **health map**: real-server key -> :class:`ServerHealth`
(``up``, and ``weight``, None unless a ``misc_dynamic`` check set one), which
the IPVS side turns into its pool. See docs/health.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrrpy.health.model import (
    CheckKind,
    CheckSpec,
    DnsCheck,
    HealthConfigError,
    HttpCheck,
    MiscCheck,
    TcpCheck,
    Timing,
    spec_from_json,
    spec_to_json,
)
from vrrpy.health.state import (
    CheckerChange,
    CheckerState,
    CheckResult,
    ServerChange,
    ServerHealth,
    ServerState,
    effective_weight,
    health_map,
)

if TYPE_CHECKING:
    from vrrpy.health.agent import HealthAgent
    from vrrpy.health.checks import run_check
    from vrrpy.health.runner import HealthRunner

__all__ = [
    "CheckKind",
    "CheckResult",
    "CheckSpec",
    "CheckerChange",
    "CheckerState",
    "DnsCheck",
    "HealthAgent",
    "HealthConfigError",
    "HealthRunner",
    "HttpCheck",
    "MiscCheck",
    "ServerChange",
    "ServerHealth",
    "ServerState",
    "TcpCheck",
    "Timing",
    "effective_weight",
    "health_map",
    "run_check",
    "spec_from_json",
    "spec_to_json",
]


def __getattr__(name: str) -> Any:
    """The asyncio layers are imported on first use: the model and the state machine
    need neither asyncio, ssl nor the script runner."""
    if name == "HealthRunner":
        from vrrpy.health import runner

        return runner.HealthRunner
    if name == "HealthAgent":
        from vrrpy.health import agent

        return agent.HealthAgent
    if name == "run_check":
        from vrrpy.health import checks

        return checks.run_check
    raise AttributeError(name)
