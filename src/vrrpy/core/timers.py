"""The one place where VRRP's timer formulas live (RFC 9568 6.1, RFC 3768 6.1).

All intervals are carried in centiseconds, as on the wire; results are in
seconds (float), the unit of every deadline a core hands out.

RFC 9568 (version 3)::

    Skew_Time            = ((256 - Priority) * Master_Adver_Interval) / 256
    Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time

RFC 3768 (version 2), where the interval is not learned and the skew is not
scaled by it::

    Skew_Time            = (256 - Priority) / 256   seconds
    Master_Down_Interval = (3 * Advertisement_Interval) + Skew_Time

The division is exact, not truncated to whole centiseconds: with priority 100
and a 1 s interval the prediction is 3.609 s, which is what keepalived is
measured to do (``../shared/README.md``).
"""

from __future__ import annotations


def skew_time(priority: int, master_adver_interval_cs: int, version: int = 3) -> float:
    """Skew_Time in seconds: lower priorities wait longer, so the best Backup wins the race."""
    if version == 2:
        return (256 - priority) / 256.0
    return (256 - priority) * master_adver_interval_cs / 25600.0


def master_down_interval(priority: int, master_adver_interval_cs: int, version: int = 3) -> float:
    """Master_Down_Interval in seconds: how long a Backup waits before declaring the Master dead."""
    return 3 * master_adver_interval_cs / 100.0 + skew_time(
        priority, master_adver_interval_cs, version
    )
