"""Markdown tables and number formatting for the benchmark page (pure functions)."""

from __future__ import annotations

import math
from typing import Optional, Sequence


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], align: Optional[str] = None
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
        headers: column titles.
        rows: cells (converted with ``str``; ``|`` escaped), each row as long as ``headers``.
        align: one letter per column, ``l`` or ``r`` (default: first column left, the rest right).
    """
    if align is None:
        align = "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or any(len(row) != len(headers) for row in rows):
        raise ValueError("every row and the alignment need one entry per header")

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_num(value: Optional[float], digits: int = 1) -> str:
    """``1234.5 -> "1,234.5"``; None or NaN -> ``"n/a"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_seconds(seconds: Optional[float]) -> str:
    """Seconds with a precision that suits the size: ``0.0261 -> "0.026 s"``, ``12.34 -> "12.3 s"``,
    ``256.8 -> "257 s"``."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds:,.0f} s"


def fmt_mib(mib: Optional[float]) -> str:
    """Memory in MiB as ``"2,476 MiB"`` (GiB never: the page compares MiB with MiB)."""
    return "n/a" if mib is None else f"{mib:,.0f} MiB"


def fmt_rate(per_second: float) -> str:
    """A throughput: ``38910.2 -> "38.9k/s"``, ``1.5e6 -> "1.50M/s"``, ``512 -> "512/s"``."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k/s"
    return f"{per_second:.0f}/s"


def fmt_count(n: float) -> str:
    """``10_000_000 -> "10M"``, ``1_234_567 -> "1.23M"``, ``250_000 -> "250k"``, ``943 -> "943"``."""
    if n >= 1e6:
        text = f"{n / 1e6:.2f}".rstrip("0").rstrip(".")
        return text + "M"
    if n >= 1e3:
        text = f"{n / 1e3:.1f}".rstrip("0").rstrip(".")
        return text + "k"
    return f"{n:.0f}"


def fmt_load(before: Sequence[float], after: Sequence[float]) -> str:
    """1-minute load averages before and after a measurement: ``"4.62 → 5.96"``."""
    return f"{before[0]:.2f} → {after[0]:.2f}"


def fmt_metric(value: Optional[float]) -> str:
    """A ranking metric with 3 decimals (``0.44199 -> "0.442"``)."""
    return "n/a" if value is None else f"{value:.3f}"
