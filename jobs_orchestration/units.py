"""Figures in the units a person reads: sizes in binary units, durations in the largest units that fit.
The raw number stays beside them wherever they are shown (metadata keeps both)."""

from __future__ import annotations

_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def readable_bytes(size: int) -> str:
    """`512 B`, `1.2 GiB`, `3.0 TiB`: one decimal from KiB on, binary units (what `du -h` prints)."""
    if size < 0:
        return f"-{readable_bytes(-size)}"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _BYTE_UNITS:
        value /= 1024
        if value < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def readable_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"
