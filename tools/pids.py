"""Which process is ours: a pid file that records the process's start time too.

A pid alone is reused by the kernel; a pid and its start time (clock ticks
since boot, ``/proc/<pid>/stat`` field 22) name one process for good. The
stack and the demo stop only what such a file names, so a Kafka, Redis or
worker of somebody else's is never touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@dataclass(frozen=True)
class PidFile:
    path: Path

    def write(self, pid: int, argv: list[str]) -> None:
        record = {"pid": pid, "start_ticks": start_ticks(pid), "argv": argv}
        self.path.write_text(json.dumps(record))

    def live_pid(self) -> int | None:
        """The recorded pid if that very process (same start time) still runs."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        pid = int(record["pid"])
        ticks = start_ticks(pid)
        if ticks is None or ticks != record.get("start_ticks"):
            return None
        return pid

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
