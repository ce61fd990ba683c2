"""Backends: what a transition does besides the protocol (services, DRBD, scripts).

See :mod:`vrrpy.backends.base` for the API and the order of phases, and
:mod:`vrrpy.backends.pipeline` for how the runtime runs them beside the
protocol loop.
"""

from vrrpy.backends.base import Backend, BackendError, Refused, TransitionEvent, implements
from vrrpy.backends.offloop import OffLoop
from vrrpy.backends.pipeline import BackendStats, Pipeline

__all__ = [
    "Backend",
    "BackendError",
    "BackendStats",
    "OffLoop",
    "Pipeline",
    "Refused",
    "TransitionEvent",
    "implements",
]
