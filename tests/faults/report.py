"""Render the fault harness's report (one JSON line per run) as the docs' markdown table.

    python -m tests.faults.report [.stack/faults-report.jsonl]

Runs are grouped by scenario; figures are summed over the runs, recovery is
the median and the worst of the runs' seconds.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.faults.harness import REPORT


def table(lines: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        groups[line["scenario"]].append(line)
    out = [
        "| scenario | runs | events per run | transitions expected / emitted / lost / "
        "duplicated | not in oracle | dead letters expected / found | recovery s (median, "
        "worst) | worker restarts | problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, runs in groups.items():
        total = {
            k: sum(r[k] for r in runs)
            for k in (
                "transitions_expected",
                "transitions_emitted",
                "lost",
                "duplicated",
                "unexpected",
                "dead_letters_expected",
                "dead_letters_found",
                "worker_restarts",
            )
        }
        recovery = [r["recovery_s"] for r in runs if r["recovery_s"] is not None]
        rec = f"{statistics.median(recovery):.1f}, {max(recovery):.1f}" if recovery else "n/a"
        problems = sum(1 for r in runs if r["problems"])
        events = sorted({r["events"] for r in runs})
        out.append(
            f"| {scenario} | {len(runs)} | {', '.join(f'{e:,}' for e in events)} "
            f"| {total['transitions_expected']:,} / {total['transitions_emitted']:,} / "
            f"{total['lost']} / {total['duplicated']} | {total['unexpected']} "
            f"| {total['dead_letters_expected']} / {total['dead_letters_found']} | {rec} "
            f"| {total['worker_restarts']} | {problems} run(s) |"
        )
    return "\n".join(out) + "\n"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    print(table(lines), end="")
    for line in lines:
        if line["problems"]:
            print(f"- {line['scenario']} run {line['run']}: {'; '.join(line['problems'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
