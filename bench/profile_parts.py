"""The worker's CPU per event by part, from a py-spy profile of a bench run (issue 31, item 7).

    python -m bench.harness --quick --phases worker --profile /tmp/worker.txt
    python -m bench.profile_parts /tmp/worker.txt --cpu-us 900

``--profile`` runs the keyed worker under ``py-spy record --format raw`` (collapsed
stacks: one line per distinct stack, frames joined by ``;``, then the sample count).
Each sample goes to the part of its **innermost** frame that names one (a send made
by the outbox counts as the outbox's, a decode inside scoring as scoring's); a stack
naming none (a socket write whose caller the event loop hides) goes to the Kafka
client or the asyncio machinery; samples blocked in the event loop's ``select`` (or
asyncio's thread waiting on the projector child) are set apart as idle. With
``--cpu-us`` (the same run's ``worker_cpu_us_per_event``: ``bench/cpu.py``) each
part's share of the busy samples is turned into CPU µs per event.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

IDLE = "idle (event loop waiting)"
# A blocked call py-spy does not know as idle: the event loop's select, and asyncio's
# child watcher thread waiting on the projector child.
IDLE_FRAMES = ("select (selectors.py", "poll (selectors.py", "_do_waitpid (")

# part -> substrings of a frame ("function (file:line)"). A sample goes to the innermost
# frame that names one of PARTS; a stack with none goes to the innermost of GENERIC.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("scoring (PartitionBatch + pure core)", ("stream_app/scoring/", "worker/pipeline.py")),
    (
        "outbox (sends, acks, record encode + RocksDB batch + changelog)",
        (
            "send_ordered (",
            "flush (stream_app/worker/agents.py",
            "flusher (",
            "worker/records.py",
            "encode_record",
            "encode_output",
            "stream_app/cloudevents.py",
            "aiokafka/producer/",
        ),
    ),
    (
        "intake (the agent: batches, hold-back, decode)",
        ("score_and_queue", "score_partition", "worker/ordering.py", "stream_app/codec.py"),
    ),
    (
        "Faust's consume path (fetcher, conductor, stream, aiokafka consumer)",
        (
            "faust/transport/",
            "faust/streams.py",
            "faust/channels.py",
            "faust/topics.py",
            "aiokafka/consumer/",
            "faust/agents/",
        ),
    ),
    ("Faust's table, recovery, commit", ("faust/tables/", "faust/stores/")),
    ("the Redis projection, metrics, upkeep", ("stream_app/serve/", "worker/health.py")),
    (STARTUP := "start-up (imports)", ("<frozen importlib._bootstrap",)),
]
GENERIC: list[tuple[str, tuple[str, ...]]] = [
    ("Kafka client I/O (sockets, protocol, metadata)", ("aiokafka/",)),
    ("asyncio and mode machinery", ("asyncio/", "mode/")),
]


def part_of(stack: str) -> str:
    frames = stack.split(";")
    if frames and any(idle in frames[-1] for idle in IDLE_FRAMES):
        return IDLE
    for table in (PARTS, GENERIC):
        for frame in reversed(frames):
            for part, needles in table:
                if any(needle in frame for needle in needles):
                    return part
    return "other"


def parts(text: str) -> Counter[str]:
    """Samples per part from collapsed stacks (``stack count`` per line)."""
    out: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out[part_of(stack)] += int(count)
    return out


def table(counts: Counter[str], cpu_us: float | None) -> str:
    """Shares of the busy samples after start-up (the harness's CPU per event counts from
    the worker's start-up line, after its imports)."""
    idle, startup = counts.get(IDLE, 0), counts.get(STARTUP, 0)
    busy = sum(counts.values()) - idle - startup
    lines = [
        "| part | samples | share of busy samples | CPU µs per event |",
        "|---|---:|---:|---:|",
    ]
    for part, n in counts.most_common():
        if part in (IDLE, STARTUP):
            continue
        share = n / busy if busy else 0.0
        per = f"{share * cpu_us:,.0f}" if cpu_us is not None else "n/a"
        lines.append(f"| {part} | {n:,} | {100 * share:.1f} % | {per} |")
    lines.append(f"| ({STARTUP}, before the CPU figure starts) | {startup:,} | | |")
    lines.append(f"| ({IDLE}, not CPU) | {idle:,} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.profile_parts",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("profile", type=Path, help="py-spy raw output (--profile FILE of the harness)")
    p.add_argument("--cpu-us", type=float, help="the run's worker CPU µs per event")
    args = p.parse_args(argv)
    if not args.profile.is_file():
        raise SystemExit(f"no such profile: {args.profile}")
    print(table(parts(args.profile.read_text()), args.cpu_us))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
