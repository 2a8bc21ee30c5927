"""The scoring core's output oracle: one sha256 per rules file over a large seeded run.

A change to the pure core that is meant to be a speed-up or a move must leave
these hashes unchanged (issue 16)::

    python -m bench.core_hash                  # 200,000 events, both rules files
    python -m bench.core_hash --events 20000   # a quicker look

What is hashed, in order, for each rules file (``rules/default.yaml``,
``rules/product_led.yaml``):

1. every step of ``Replay.process`` over the traffic: its status, key, each
   transition's ``model_dump_json()`` and the score update's;
2. two decay sweeps, at the last event + 120 days and + 400 days;
3. every final state's ``to_json()``, in sorted key order;
4. a second replay over the first ``--roundtrip`` events (default 20,000) in
   which every state goes through ``to_json``/``from_json`` before each event,
   as the live worker stores and reloads it: steps, a sweep, final states.

The traffic is the generator's (seed 11, one prospect per ten events, as the
worker bench), plus seeded perturbations so every engine path runs: repeated
events (duplicates), events far older than the horizon (late), events a few
days out of order, and sales feedback for identified leads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.core import load
from schemas.dead_letter import DeadLetter
from schemas.events import InputEvent
from stream_app.codec import decode
from stream_app.ingest.segment import Ignored
from tools.traffic import generate

REPO_ROOT = Path(__file__).resolve().parent.parent
RULES = ("rules/default.yaml", "rules/product_led.yaml")
OUTCOMES = ("accepted", "rejected", "opportunity", "won", "lost")


def _iso(value: str, shift: timedelta) -> str:
    moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + shift
    return moved.astimezone(UTC).isoformat().replace("+00:00", "Z")


def events(count: int, seed: int = 11) -> list[InputEvent]:
    """``count`` decoded events: generated traffic with seeded perturbations."""
    rng = random.Random(seed * 7919)
    raw: list[dict[str, Any]] = []
    leads: list[str] = []
    for event in generate(max(100, count // 10), seed, id_prefix="h-"):
        if len(raw) >= count:
            break
        raw.append(event)
        lead = event.get("lead_id")
        if lead is not None and (not leads or leads[-1] != lead):
            leads.append(lead)
        roll = rng.random()
        if roll < 0.01 and len(raw) > 50:  # a redelivery of a recent event
            raw.append(dict(raw[-rng.randint(2, 50)]))
        elif roll < 0.012:  # far older than the horizon: late (or, for a new key, first)
            late = dict(event, event_id=f"{event['event_id']}-late")
            late["occurred_at"] = _iso(event["occurred_at"], -timedelta(days=200))
            raw.append(late)
        elif roll < 0.03:  # a few days out of order
            back = dict(event, event_id=f"{event['event_id']}-back")
            back["occurred_at"] = _iso(event["occurred_at"], -timedelta(hours=rng.uniform(1, 120)))
            raw.append(back)
        elif roll < 0.036 and leads:
            raw.append(
                {
                    "type": "sales_feedback",
                    "event_id": f"{event['event_id']}-sf",
                    "occurred_at": event["occurred_at"],
                    "lead_id": rng.choice(leads[-200:]),
                    "outcome": rng.choice(OUTCOMES),
                    "reason": rng.choice([None, "budget", "timing"]),
                }
            )
    out: list[InputEvent] = []
    for event in raw[:count]:
        decoded = decode(json.dumps(event).encode())
        assert not isinstance(decoded, DeadLetter | Ignored), decoded
        out.append(decoded)
    return out


def _feed(digest: Any, step: Any, counts: Counter[str]) -> None:
    counts[step.status] += 1
    counts["transitions"] += len(step.transitions)
    digest.update(f"{step.status}|{step.key}|".encode())
    for transition in step.transitions:
        digest.update(transition.model_dump_json().encode())
    if step.update is not None:
        digest.update(step.update.model_dump_json().encode())
    digest.update(b"\n")


def run(
    rules_path: str, traffic: list[InputEvent], roundtrip: int
) -> tuple[str, float, Counter[str]]:
    """sha256 of the run over ``traffic`` with the rules at ``rules_path``; seconds; counts."""
    from stream_app.scoring.replay import Replay  # noqa: PLC0415
    from stream_app.scoring.state import LeadState, anonymous_key  # noqa: PLC0415

    rules = load(REPO_ROOT / rules_path)
    digest = hashlib.sha256()
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    replay = Replay(rules)
    for event in traffic:
        _feed(digest, replay.process(event), counts)
    last = max(e.occurred_at for e in traffic).timestamp()
    for days in (120, 400):
        digest.update(f"sweep {days}\n".encode())
        for transition in replay.sweep(last + days * 86400.0):
            counts[f"sweep {days}"] += 1
            digest.update(transition.model_dump_json().encode())
    digest.update(b"states\n")
    for key in sorted(replay.states):
        digest.update(replay.states[key].to_json() + b"\n")
    seconds = time.perf_counter() - started

    digest.update(b"roundtrip\n")
    stored = Replay(rules)
    for event in traffic[:roundtrip]:
        anon = event.anonymous_id
        touched = (event.lead_id, anon and anonymous_key(anon), anon and stored.links.get(anon))
        for touched_key in touched:  # every state process() may read, as stored
            if touched_key and touched_key in stored.states:
                stored.states[touched_key] = LeadState.from_json(
                    stored.states[touched_key].to_json()
                )
        _feed(digest, stored.process(event), Counter())
    sub_last = max(e.occurred_at for e in traffic[:roundtrip]).timestamp()
    stored.states = {k: LeadState.from_json(s.to_json()) for k, s in stored.states.items()}
    for transition in stored.sweep(sub_last + 120 * 86400.0):
        digest.update(transition.model_dump_json().encode())
    for key in sorted(stored.states):
        digest.update(stored.states[key].to_json() + b"\n")
    return digest.hexdigest(), seconds, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.core_hash",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="events (default 200,000)")
    parser.add_argument(
        "--roundtrip",
        type=int,
        default=20_000,
        help="events replayed with every state stored and reloaded between events (default 20,000)",
    )
    parser.add_argument("--rules", nargs="+", default=list(RULES), help="rules files to hash")
    args = parser.parse_args(argv)
    traffic = events(args.events)
    kinds: dict[str, int] = {}
    for event in traffic:
        kinds[event.type] = kinds.get(event.type, 0) + 1
    print(f"{len(traffic):,} events: {kinds}", file=sys.stderr)
    for path in args.rules:
        digest, seconds, counts = run(path, traffic, min(args.roundtrip, len(traffic)))
        print(f"{digest}  {path}  ({len(traffic):,} events, replay {seconds:.1f} s)")
        print(f"  {dict(counts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
