"""Run ``airflow dags test`` quietly: its whole output to a log file, one line per finished task on the
terminal, and a progress line while a task (an EMR step's sensor) keeps running.

``airflow dags test`` runs one task at a time and logs ``[DAG TEST] starting task_id=…`` / ``end task
task_id=…`` around each, with the task's final state in between (``new_state=…``): that is all this
reads. Pure parsing in :func:`task_event`; :func:`run_quietly` wraps the process.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")
_STATE = re.compile(r"Task instance state updated .*new_state=(\w+)")
PROGRESS_EVERY_S = 30.0


def task_event(line: str) -> Optional[Tuple[str, str]]:
    """``("start", task)``, ``("end", task)`` or ``("state", state)`` for a line of ``dags test``'s
    output that says so, else None. A mapped instance's task is ``task[index]``."""
    for kind, pattern in (("start", _START), ("end", _END)):
        found = pattern.search(line)
        if found:
            task, index = found.group(1), int(found.group(2))
            return kind, task + (f"[{index}]" if index >= 0 else "")
    found = _STATE.search(line)
    return ("state", found.group(1)) if found else None


def run_quietly(
    command: List[str], env: Dict[str, str], cwd: Path, log_path: Path, out: Callable[[str], None] = print
) -> Tuple[int, List[Tuple[str, str, float]]]:
    """Run ``command`` with its output in ``log_path``; print ``task  state  seconds`` as each task ends
    and ``… task still running (N s)`` every PROGRESS_EVERY_S while one runs. Returns (exit code,
    [(task, state, seconds)])."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    finished: List[Tuple[str, str, float]] = []
    current: Optional[str] = None
    state, started, noted = "", 0.0, 0.0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if selector.select(timeout=1.0):
                line = proc.stdout.readline()
                if not line:
                    break
                log.write(line)
                event = task_event(line)
                now = time.monotonic()
                if event and event[0] == "start":
                    current, state, started, noted = event[1], "", now, now
                elif event and event[0] == "state" and current:
                    state = event[1]
                elif event and event[0] == "end" and current:
                    finished.append((current, state or "?", now - started))
                    out(f"  {current:<28}{state or '?':<16}{now - started:7.1f} s")
                    current = None
            now = time.monotonic()
            if current and now - noted >= PROGRESS_EVERY_S:
                out(f"  … {current} still running ({now - started:.0f} s)")
                noted = now
        selector.close()
        return proc.wait(), finished
