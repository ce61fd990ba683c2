"""What the importer says about a keepalived.conf: one :class:`Note` per setting that matters.

A note has a file and line (where keepalived would report the statement), the
``vrrp_instance`` (or other named block) it belongs to, and a severity that
decides the exit status of ``vrrpctl import-keepalived``:

* ``info``: nothing is lost. vrrpyd does what keepalived 2.2.7 really does, but
  that differs from what the file seems to say (``auth_pass`` cut to 8
  characters, ``nopreempt`` beside ``state MASTER``, authentication under
  VRRPv3), or the setting has no effect in either daemon (``router_id``
  without mail alerts).
* ``changed``: carried over, but vrrpyd behaves differently in a way a user
  can notice (a per-address ``dev`` that vrrpyd ignores, a script's user).
* ``dropped``: not carried over at all.

Any ``changed`` or ``dropped`` note makes the exit status 1; ``info`` notes
alone leave it 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from vrrpy.keepalived.model import Statement

__all__ = ["SEVERITIES", "Note", "Notes", "Severity"]

Severity: TypeAlias = Literal["info", "changed", "dropped"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "changed", "dropped")
_WORDS: Final[dict[Severity, str]] = {
    "info": "note",
    "changed": "changed",
    "dropped": "not carried over",
}


@dataclass(frozen=True, slots=True)
class Note:
    """One thing the report says: where, in which block, how serious, what."""

    file: str
    line: int
    instance: str | None
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        scope = f" {self.instance}:" if self.instance else ""
        return f"{where}:{scope} {_WORDS[self.severity]}: {self.message}"


@dataclass
class Notes:
    """The notes of one conversion, in the order they were made, without repeats.

    ``scope`` is what new notes are attributed to (``instance VI_1``,
    ``vrrp_script chk``): the converter sets it while it reads a block.
    """

    items: list[Note] = field(default_factory=list)
    scope: str | None = None
    _seen: set[tuple[str, int, str | None, str]] = field(default_factory=set)

    def add(
        self,
        where: Statement | tuple[str, int] | None,
        severity: Severity,
        message: str,
        scope: str | None = None,
    ) -> None:
        """Record a note about ``where`` (a statement, or (file, line); None: the file)."""
        if isinstance(where, Statement):
            file, line = where.file, where.line
        elif where is None:
            file, line = "", 0
        else:
            file, line = where
        scope = self.scope if scope is None else scope or None
        key = (file, line, scope, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(Note(file, line, scope, severity, message))

    def info(self, where: Statement | None, message: str, scope: str | None = None) -> None:
        self.add(where, "info", message, scope)

    def changed(self, where: Statement | None, message: str, scope: str | None = None) -> None:
        self.add(where, "changed", message, scope)

    def dropped(self, where: Statement | None, message: str, scope: str | None = None) -> None:
        self.add(where, "dropped", message, scope)

    @property
    def lossless(self) -> bool:
        """True when every note is ``info``: everything was carried over."""
        return all(note.severity == "info" for note in self.items)
