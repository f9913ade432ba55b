"""Durations as people write them ("90s", "15m", "1h30m", "250ms"), shared by options and
profile files."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["seconds"]

_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SCALE: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """Seconds from '90', '90s', '1h30m' or '250ms'; ValueError for anything else."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"expected a duration like 90, 90s, 15m or 1h30m; got {text!r}")
    return sum(float(number) * _SCALE[unit] for number, unit in parts)
