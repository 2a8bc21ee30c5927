"""How long ``evaluate`` and ``learn`` take on a million events, and how much memory (issue 28).

    python -m bench.outcomes                     # 1,000,000 events (about 96,000 prospects)
    python -m bench.outcomes --events 100000     # a quicker look

Generates seeded traffic with sales feedback (``python -m tools generate
--outcomes truth``, not timed), then runs ``python -m stream_app evaluate`` and
``learn`` on it, each as a process of its own, and records the wall time and
the peak resident memory of each (``wait4``'s ``ru_maxrss``). Writes
``bench/results/<time>-outcomes.md`` with the command, commit and machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVENTS_PER_PROSPECT = 10.4  # the generator's mean at seed 7


def run(argv: list[str], log: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit status) of one command."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outcomes", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=REPO / ".stack" / "bench-outcomes")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    leads = round(args.events / EVENTS_PER_PROSPECT)
    events = args.work / f"events-{leads}.jsonl"
    py = sys.executable
    if not events.exists():
        print(f"generating {leads:,} prospects with outcomes (not timed) ...", file=sys.stderr)
        with open(events, "wb") as out:
            subprocess.run(
                [py, "-m", "tools", "generate", "--leads", str(leads), "--outcomes", "truth"],
                cwd=REPO,
                stdout=out,
                check=True,
            )
    with open(events, "rb") as lines_of:
        count = sum(1 for _ in lines_of)
    load = os.getloadavg()
    rows = []
    commands = {
        "evaluate": [
            py,
            "-m",
            "stream_app",
            "evaluate",
            "--rules",
            "rules/default.yaml",
            str(events),
            "--quiet",
            "--json",
            str(args.work / "report.json"),
        ],
        "learn": [
            py,
            "-m",
            "stream_app",
            "learn",
            "--rules",
            "rules/default.yaml",
            str(events),
            "--quiet",
            "--out",
            str(args.work / "proposed.yaml"),
        ],
    }
    for name, command in commands.items():
        print(f"{name} ...", file=sys.stderr)
        seconds, rss, status = run(command, args.work / f"{name}.log")
        rows.append((name, command, seconds, rss, status))
        print(f"{name}: {seconds / 60:.1f} min, peak RSS {rss:,.0f} MiB, exit {status}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
    result = REPO / "bench" / "results" / f"{stamp}-outcomes.md"
    lines = [
        f"# evaluate and learn on {count:,} events ({stamp})",
        "",
        f"- commit {_commit()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average at the start "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs on the machine)",
        f"- traffic: `python -m tools generate --leads {leads} --outcomes truth` "
        f"({count:,} lines, {events.stat().st_size / 2**20:,.0f} MiB)",
        "- command: `python -m bench.outcomes"
        + (f" --events {args.events}`" if args.events != 1_000_000 else "`"),
        "",
        "| command | wall time | peak RSS | exit |",
        "|---|---|---|---|",
    ]
    for name, command, seconds, rss, status in rows:
        shown = " ".join(c if not c.startswith("/") else Path(c).name for c in command[1:])
        lines.append(
            f"| `{name}`: `{shown}` | {seconds / 60:.1f} min | {rss:,.0f} MiB | {status} |"
        )
    result.write_text("\n".join(lines) + "\n")
    print(f"written to {result.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
