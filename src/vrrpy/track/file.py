"""File tracking (keepalived's ``track_file``), watched with inotify, inside the agent.

keepalived's rules (``keepalived/trackers/track_file.c``, ``process_track_file``
and ``process_inotify``), kept here:

* the value is the file's first 127 bytes read as C's ``strtol(buf, NULL, 0)``:
  leading white space, a sign, ``0x`` for hexadecimal, a leading ``0`` for
  octal, and whatever follows the digits ignored (``"12 apples"`` is 12);
  no digits at all reads as 0;
* a file that is missing, cannot be opened or is empty reads as 0; a deleted or
  renamed-away file becomes 0 at once;
* a number outside the 32-bit range (below -2^31 or above 2^31) is logged and
  ignored: the value stays what it was;
* the watch is on the file's *directory* (``IN_CLOSE_WRITE``, ``IN_MOVED_TO``,
  ``IN_MOVED_FROM``, ``IN_DELETE``), so a file replaced by a rename (how
  careful writers update it) or created later is seen; the path is resolved
  once at start (keepalived: ``realpath`` of the file if it exists, else of
  its directory). A file written but not yet
  closed is read when it is closed.

What the value does to the priority (value times weight, -254 meaning
FAULT, weight 0: non-zero means FAULT) is the model's
(:func:`vrrpy.track.model.contribution`).

inotify through :mod:`ctypes` (``inotify_init1`` / ``inotify_add_watch``): the
standard library has no binding and a dependency for three calls is not
worth it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct
from collections.abc import Callable
from typing import Any, Final

from vrrpy.track.model import Kind, Verdict
from vrrpy.track.protocol import FileSpec

__all__ = ["FileCheck", "Inotify", "parse_track_file"]

log = logging.getLogger(__name__)

IN_CLOSE_WRITE: Final = 0x008
IN_MOVED_FROM: Final = 0x040
IN_MOVED_TO: Final = 0x080
IN_DELETE: Final = 0x200
IN_DELETE_SELF: Final = 0x400
IN_IGNORED: Final = 0x8000
IN_ISDIR: Final = 0x40000000
IN_NONBLOCK: Final = os.O_NONBLOCK
IN_CLOEXEC: Final = os.O_CLOEXEC
WATCH_MASK: Final = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len
READ_MAX: Final = 127
_INT32_MIN: Final = -(2**31)
_INT32_LIMIT: Final = 2**31  # keepalived accepts up to INT32_MAX + 1
_LONG_MAX: Final = 2**63 - 1


def parse_track_file(data: bytes) -> int | None:
    """The value keepalived reads from ``data`` (first 127 bytes); None: ignore it, keep the old.

    C's ``strtol(buf, NULL, 0)`` by hand: ``int(x, 0)`` differs (it refuses
    trailing text and reads ``010`` as an error, where C reads octal 8).
    """
    text = data[:READ_MAX].split(b"\0", 1)[0]
    i, n = 0, len(text)
    while i < n and text[i] in b" \t\n\v\f\r":
        i += 1
    sign = 1
    if i < n and text[i] in b"+-":
        sign = -1 if text[i] == ord("-") else 1
        i += 1
    base = 10
    if i + 1 < n and text[i] == ord("0") and text[i + 1] in b"xX":
        if i + 2 < n and chr(text[i + 2]) in "0123456789abcdefABCDEF":
            base, i = 16, i + 2
        else:
            return 0  # "0x" with no hex digit: strtol reads the "0"
    elif i < n and text[i] == ord("0"):
        base = 8
    digits = "0123456789abcdef"[:base]
    value = 0
    start = i
    while i < n and chr(text[i]).lower() in digits:
        value = value * base + int(chr(text[i]), 16)
        i += 1
    if i == start:
        return 0
    value *= sign
    if value > _LONG_MAX or value < -_LONG_MAX - 1:
        return None  # strtol: ERANGE
    if value < _INT32_MIN or value > _INT32_LIMIT:
        return None
    return value


def read_track_file(path: str) -> tuple[int | None, str]:
    """(value or None to ignore, description) for the file at ``path`` now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return 0, f"unreadable ({errno.errorcode.get(exc.errno or 0, exc.errno)}), read as 0"
    try:
        data = os.read(fd, READ_MAX)
    except OSError as exc:
        return 0, f"unreadable ({errno.errorcode.get(exc.errno or 0, exc.errno)}), read as 0"
    finally:
        os.close(fd)
    if not data:
        return 0, "empty, read as 0"
    value = parse_track_file(data)
    if value is None:
        return None, f"holds an out-of-range number {data[:40]!r}, ignored"
    return value, f"holds {value}"


class Inotify:
    """One inotify instance (``inotify_init1``); :meth:`read` returns (wd, mask, name) events."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def fileno(self) -> int:
        return self.fd

    def add_watch(self, path: str, mask: int) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        return int(wd)

    def read(self) -> list[tuple[int, int, str]]:
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            offset = 0
            while len(data) - offset >= _EVENT.size:
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                events.append((wd, mask, os.fsdecode(raw.split(b"\0", 1)[0])))
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self.fd)


class FileCheck:
    """One ``track_file``: reads the file at start and on every inotify event for its name."""

    def __init__(self, spec: FileSpec, inotify: Inotify, report: Callable[[Verdict], None]) -> None:
        self.spec = spec
        self._report = report
        # keepalived: realpath() of the file if it exists (a symlink is followed to the
        # file it names, whose directory is watched), else of its directory.
        path = os.path.realpath(spec.file)
        self.directory = os.path.dirname(path)
        self.filename = os.path.basename(path)
        self.path = os.path.join(self.directory, self.filename)
        self.value = 0
        self.description = "not read yet"
        self.wd: int | None = None
        try:
            self.wd = inotify.add_watch(self.directory, WATCH_MASK)
        except OSError as exc:
            log.warning("track %s: cannot watch %s: %s", spec.name, self.directory, exc)
            self.description = f"directory not watchable ({exc.strerror}), read as 0"
        self.verdict: Verdict | None = None

    def start(self) -> None:
        self.refresh()

    def refresh(self, gone: bool = False) -> None:
        """Read the file again (``gone``: it was deleted or renamed away, so 0)."""
        if gone:
            value: int | None = 0
            description = "removed, read as 0"
        else:
            value, description = read_track_file(self.path)
        if value is None:
            log.warning("track %s: %s %s", self.spec.name, self.path, description)
            value = self.value
        self.value = value
        self.description = description
        verdict = Verdict(
            self.spec.name,
            Kind.FILE,
            True,
            f"file {self.path} {description}",
            value=value,
        )
        if self.verdict is None or (verdict.value, verdict.up) != (
            self.verdict.value,
            self.verdict.up,
        ):
            self.verdict = verdict
            self._report(verdict)

    def event(self, mask: int, name: str) -> None:
        if mask & (IN_DELETE_SELF | IN_IGNORED):
            log.warning("track %s: directory %s went away", self.spec.name, self.directory)
            self.wd = None
            self.refresh(gone=True)
            return
        if name != self.filename or mask & IN_ISDIR:
            return
        self.refresh(gone=bool(mask & (IN_MOVED_FROM | IN_DELETE)))

    def status(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "path": self.path,
            "value": self.value,
            "reason": self.description,
            "watched": self.wd is not None,
        }
