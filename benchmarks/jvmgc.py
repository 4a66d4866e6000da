"""What the JVM's own GC log says about its heap (``-Xlog:gc``, JDK 11+ unified logging).

RSS shows what the JVM has *committed*; G1 grows the heap when collections get frequent and rarely gives
it back, so RSS alone cannot tell retained data from slack. The heap *after* each collection is what
was still live: if its peak grows with the input, the job keeps data proportional to the input.

A pause line looks like::

    [12.345s][info][gc] GC(12) Pause Young (Normal) (G1 Evacuation Pause) 1234M->567M(2048M) 12.345ms
"""

from __future__ import annotations

import re
from typing import Dict, Iterable

_PAUSE = re.compile(r"GC\(\d+\) Pause .*?(\d+)M->(\d+)M\((\d+)M\)")


def java_options(log_path: str) -> str:
    """The ``--driver-java-options`` value that writes the GC log to ``log_path``."""
    return f"-Xlog:gc:file={log_path}"


def heap_summary(lines: Iterable[str]) -> Dict[str, int]:
    """``{"collections", "max_live_mib", "max_committed_mib"}`` from GC log lines (MiB; 0 if none):
    the largest heap occupancy right after a pause, and the largest committed heap."""
    collections, live, committed = 0, 0, 0
    for line in lines:
        match = _PAUSE.search(line)
        if match:
            collections += 1
            live = max(live, int(match.group(2)))
            committed = max(committed, int(match.group(3)))
    return {"collections": collections, "max_live_mib": live, "max_committed_mib": committed}
