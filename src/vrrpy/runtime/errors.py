"""Why an instance could not start, in the terms of its configuration.

A daemon reports these like configuration errors (``instance[NAME].KEY: what is
wrong``) instead of a traceback: the operator fixes the named key, or the host.
"""

from __future__ import annotations

__all__ = ["InstanceStartError"]


class InstanceStartError(RuntimeError):
    """Instance ``instance`` cannot start because of what its ``key`` names (``message``)."""

    def __init__(self, instance: str, key: str, message: str) -> None:
        super().__init__(f"instance[{instance}].{key}: {message}")
        self.instance = instance
        self.key = key
        self.message = message
