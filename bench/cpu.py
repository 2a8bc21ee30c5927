"""CPU time per event of each process a phase runs, read from ``/proc`` (issue 31, item 7).

On two shared cores the worker competes with its own projector child and the
broker, while the count-only Faust agent it is compared with produces,
writes and projects nothing: a wall-clock ratio mixes those up, and another
engineer's job on the machine moves it by up to 3x. The CPU a process spent
per event is what it costs, whatever else ran. Each phase therefore samples,
at its start and end, the CPU time (user + system, all threads) of:

- ``worker``: the process under test (the worker's main process, or the bare
  Faust agent; under py-spy, py-spy's child);
- ``projector``: its children (the worker's Redis projection child);
- ``broker``: every Kafka broker JVM on the machine (``kafka.Kafka``);
- ``redis``: every ``redis-server``;
- ``harness``: this process (the in-process phases: pure core, passthrough,
  design ceiling; and the producers and consumers of the others);

and the machine's busy cores over the phase (``/proc/stat``), with the load
average: what the other engineers' jobs took is ``busy_cores`` minus what
ours took. The broker and Redis are shared with them too: their CPU per
event is an upper bound on what this phase cost them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHARED = {"broker": "kafka.Kafka", "redis": "redis-server"}  # role -> cmdline marker


def parse_stat(text: str) -> float:
    """CPU seconds (utime + stime) from a ``/proc/<pid>/stat`` line.

    The command name (field 2) is in parentheses and may hold spaces or
    parentheses itself, so fields are counted from the last ``)``: utime and
    stime are fields 14 and 15, the 12th and 13th after it.
    """
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU seconds so far, or None once it is gone."""
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return out
    for task in tasks:
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def pids_running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if marker.encode() in cmdline and b"pids_running" not in cmdline:
            out.append(int(entry.name))
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from ``/proc/stat``'s ``cpu`` line
    (idle and iowait are not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - fields[3] - fields[4], total


@dataclass
class Sample:
    """CPU seconds per role at one moment, the machine's ticks, and the clock."""

    at: float
    seconds: dict[str, float]
    busy: int
    total: int
    load: float
    seen: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds


def sample(roles: dict[str, list[int]]) -> Sample:
    """Each role's CPU seconds: the sum over its processes that are alive."""
    seconds: dict[str, float] = {}
    seen: dict[int, float] = {}
    for role, pids in roles.items():
        total = 0.0
        for pid in pids:
            value = cpu_seconds(pid)
            if value is not None:
                seen[pid] = value
                total += value
        seconds[role] = total
    busy, ticks = machine_ticks()
    load = float(Path("/proc/loadavg").read_text().split()[0])
    return Sample(time.monotonic(), seconds, busy, ticks, load, seen)


def roles_of(main: int | None) -> dict[str, list[int]]:
    """The processes to sample: ``main`` and its children (when given), the shared servers
    and this harness."""
    roles: dict[str, list[int]] = {"harness": [os.getpid()]}
    if main is not None:
        roles["worker"] = [main]
        roles["projector"] = children(main)
    for role, marker in SHARED.items():
        roles[role] = pids_running(marker)
    return roles


def per_event(before: Sample, after: Sample, events: int) -> dict[str, Any]:
    """CPU µs per event of each role between two samples, with the machine's load.

    A role absent from ``before`` (a process started inside the window, such as the
    projector child) counts from zero: all its CPU was spent in the window.
    """
    spent = {
        role: max(0.0, after.seconds[role] - before.seconds.get(role, 0.0))
        for role in after.seconds
    }
    elapsed = after.at - before.at
    total_ticks = after.total - before.total
    busy_cores = (
        (after.busy - before.busy) / total_ticks * (os.cpu_count() or 1) if total_ticks else None
    )
    ours = sum(spent.values())
    return {
        "cpu_us_per_event": {
            role: round(seconds * 1e6 / events, 1) if events else None
            for role, seconds in spent.items()
        },
        "cpu_seconds": {role: round(seconds, 2) for role, seconds in spent.items()},
        "wall_seconds": round(elapsed, 2),
        "machine": {
            "busy_cores": None if busy_cores is None else round(busy_cores, 2),
            "others_busy_cores": (
                None
                if busy_cores is None or elapsed <= 0
                else round(max(0.0, busy_cores - ours / elapsed), 2)
            ),
            "load_average_start": before.load,
            "load_average_end": after.load,
        },
    }


class Meter:
    """Samples at ``start()`` and ``stop(events)``; the main process may be set late (a
    process started by the phase: its CPU counts from its clock mark)."""

    def __init__(self, main: int | None = None) -> None:
        self.main = main
        self._before: Sample | None = None

    def start(self) -> None:
        self._before = sample(roles_of(self.main))

    def stop(self, events: int) -> dict[str, Any]:
        assert self._before is not None, "Meter.stop before start"
        return per_event(self._before, sample(roles_of(self.main)), events)
