"""Quick speed check of the pure scoring core: events/s and µs/event, no broker.

The same traffic as the worker bench's quick mode (``bench/harness.py``:
the seeded generator, 20,000 events over 2,000 prospects, seed 11, one bad
message in 1000) through ``Replay.process`` with score updates, as the
bench's pure-core phase runs it. Two loops are timed, each ``--repeat`` times
on a fresh ``Replay``:

- ``decode+core``: ``codec.decode`` of each message, then ``Replay.process``
  (what ``make bench`` reports as the pure core);
- ``core``: ``Replay.process`` over already decoded events (the engine alone).

A step's score update is validated when first read (``Step.update``), as the
worker builds only the newest per lead per batch; neither loop reads them
unless ``--updates`` is given (every update read at once: the work the loops
did before f450fdc, for comparing with older figures).

Examples::

    python -m bench.core                          # ~20 s on this machine
    python -m bench.core --events 100000 --rules rules/product_led.yaml
    python -m bench.core --updates                # also read every step's score update
    python -m bench.core --profile                # pyinstrument (or cProfile) of one run
    python -m bench.core --profile --profile-out /tmp/core.html

Speed on a shared machine swings run to run: compare two versions by
alternating them in the same session, as ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.dead_letter import DeadLetter
from schemas.events import InputEvent
from stream_app.codec import decode
from stream_app.ingest.segment import Ignored
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules, parse_rules
from tools.traffic import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
BAD_MESSAGE = b'{"type": "page_view", "event_id": 1}'


def load(path: Path) -> Rules:
    """The rules file (read here: the same as ``load_rules``, in old and new code alike)."""
    return parse_rules(path.read_text(encoding="utf-8"), source=str(path))


def traffic(events: int, prospects: int, seed: int) -> list[bytes]:
    """Message values as ``bench.harness.traffic`` builds them (one bad in 1000)."""
    out: list[bytes] = []
    for n, event in enumerate(generate(prospects, seed, id_prefix="c-")):
        if len(out) >= events:
            break
        out.append(json.dumps(event).encode())
        if n % 1000 == 999 and len(out) < events:
            out.append(BAD_MESSAGE)
    return out


def decode_and_process(messages: list[bytes], rules: Rules, updates: bool = False) -> Replay:
    replay = Replay(rules)
    for value in messages:
        decoded = decode(value)
        if not isinstance(decoded, DeadLetter | Ignored):
            step = replay.process(decoded)
            if updates:
                step.update  # noqa: B018 (validates it)
    return replay


def process(events: list[InputEvent], rules: Rules, updates: bool = False) -> Replay:
    replay = Replay(rules)
    for event in events:
        step = replay.process(event)
        if updates:
            step.update  # noqa: B018 (validates it)
    return replay


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def profile(run: Callable[[], Any], out: str | None) -> None:
    try:
        from pyinstrument import Profiler  # noqa: PLC0415
    except ImportError:
        import cProfile  # noqa: PLC0415
        import pstats  # noqa: PLC0415

        print("(pyinstrument not installed: cProfile, by cumulative time)", file=sys.stderr)
        with cProfile.Profile() as prof:
            run()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    profiler = Profiler(interval=0.0005)
    profiler.start()
    run()
    profiler.stop()
    if out:
        Path(out).write_text(profiler.output_html())
        print(f"profile written to {out}", file=sys.stderr)
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m bench.core",
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=20_000, help="messages (default 20,000)")
    parser.add_argument("--prospects", type=int, help="prospects (default events / 10)")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    parser.add_argument(
        "--rules",
        type=Path,
        default=REPO_ROOT / "rules" / "default.yaml",
        help="rules file (default rules/default.yaml)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per loop (default 3)")
    parser.add_argument(
        "--updates",
        action="store_true",
        help="read every step's score update (validated when read; the loops' work before f450fdc)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one core-only run instead of timing (pyinstrument if installed)",
    )
    parser.add_argument("--profile-out", metavar="HTML", help="also write pyinstrument's HTML")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    rules = load(args.rules)
    messages = traffic(args.events, args.prospects or max(100, args.events // 10), args.seed)
    events = [d for d in map(decode, messages) if not isinstance(d, DeadLetter | Ignored)]
    if args.profile:
        profile(lambda: process(events, rules, args.updates), args.profile_out)
        return 0
    figures: dict[str, Any] = {
        "rules": rules.stamp,
        "messages": len(messages),
        "events": len(events),
        "updates_read": args.updates,
    }
    loops: dict[str, tuple[Callable[[], Any], int]] = {
        "decode+core": (lambda: decode_and_process(messages, rules, args.updates), len(messages)),
        "core": (lambda: process(events, rules, args.updates), len(events)),
    }
    for name, (run, count) in loops.items():
        runs = [timed(run) for _ in range(args.repeat)]
        best, median = min(runs), statistics.median(runs)
        figures[name] = {
            "events_per_s_best": round(count / best),
            "events_per_s_median": round(count / median),
            "us_per_event_best": round(best / count * 1e6, 1),
            "runs_s": [round(r, 3) for r in runs],
        }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    read = "every score update read" if args.updates else "score updates not read"
    print(f"rules {figures['rules']}: {len(messages):,} messages, {len(events):,} events ({read})")
    for name in loops:
        f = figures[name]
        print(
            f"  {name:12} {f['events_per_s_best']:>8,} events/s best "
            f"({f['us_per_event_best']:.1f} µs/event), median {f['events_per_s_median']:,}"
            f"  runs {f['runs_s']} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
