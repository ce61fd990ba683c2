"""Rate-limited logging of dropped packets (debug) and misconfigurations (warning).

A flood of forged packets must not become a flood of log lines: each reason is
logged at most once per ``interval`` seconds of the caller's clock, with the
number suppressed since. Time comes from the caller (``now``), so the core
stays clock-free.
"""

from __future__ import annotations

import logging


class DropLog:
    """Logs at ``level``, at most once per reason per ``interval`` seconds of the caller's clock."""

    __slots__ = ("_last", "_level", "_logger", "_suppressed", "interval")

    def __init__(
        self, logger: logging.Logger, interval: float = 10.0, level: int = logging.DEBUG
    ) -> None:
        self._logger = logger
        self._level = level
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, reason: str, now: float, prefix: str, detail: str, *args: object) -> None:
        """Record one drop; emit a line only if this reason is not in its quiet period.

        ``detail % args`` is formatted only for a line that is emitted: a flood
        of adverts must not pay for formatting addresses nobody will read.
        """
        if not self._logger.isEnabledFor(self._level):
            return
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        skipped = self._suppressed.pop(reason, 0)
        more = f" ({skipped} more since last report)" if skipped else ""
        text = detail % args if args else detail
        self._logger.log(self._level, "%s%s: %s%s", prefix, reason, text, more)
