"""``python -m tools crm-standin``: a CRM stand-in on a port, for trying crm-sync by hand.

Serves the HubSpot (or Salesforce) stand-in on loopback, prints where and with which
credentials, and prints what it holds (each contact's or Lead's properties) on
``SIGUSR1`` and at exit; ``GET /__standin/state`` answers the same as JSON, and
``POST /__standin/faults`` queues faults (``{"kind": "429", "seconds": 2}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from typing import Any, Protocol

#: The properties a person reads first, in this order (the rest follow, sorted).
HUBSPOT_FIRST = (
    "leadstream_lead_id",
    "lifecyclestage",
    "hs_lead_status",
    "leadstream_stage",
    "leadstream_score",
    "leadstream_grade",
    "leadstream_reason",
)
SALESFORCE_FIRST = (
    "Leadstream_Lead_Id__c",
    "Status",
    "Leadstream_Stage__c",
    "Leadstream_Score__c",
    "Leadstream_Grade__c",
    "Leadstream_Reason__c",
)


class StandIn(Protocol):
    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def held(self) -> dict[str, dict[str, Any]]: ...


def render(records: Mapping[str, Mapping[str, Any]], first: tuple[str, ...]) -> list[str]:
    """One line per record: its id, then ``name=value`` for each property it holds (the
    ones in ``first`` first), values cut at 60 characters."""
    lines = []
    for rid, props in records.items():
        names = [n for n in first if props.get(n) not in (None, "")]
        names += sorted(n for n in props if n not in first and props[n] not in (None, ""))
        shown = " ".join(f"{n}={str(props[n])[:60]!r}" for n in names)
        lines.append(f"{rid}: {shown}")
    return lines


def make(crm: str, host: str, port: int) -> tuple[StandIn, tuple[str, ...], str]:
    """The stand-in, the properties to show first, and how to point crm-sync at it."""
    if crm == "hubspot":
        from tools.crm_standin.hubspot import HubSpotStandIn  # noqa: PLC0415

        hub = HubSpotStandIn(host=host, port=port)
        return (
            hub,
            HUBSPOT_FIRST,
            "LEADSTREAM_HUBSPOT_BASE_URL={url} LEADSTREAM_HUBSPOT_TOKEN=" + (hub.token),
        )
    from tools.crm_standin.salesforce import SalesforceStandIn  # noqa: PLC0415

    sf = SalesforceStandIn(host=host, port=port)
    return (
        sf,
        SALESFORCE_FIRST,
        "LEADSTREAM_SALESFORCE_BASE_URL={url} LEADSTREAM_SALESFORCE_DOMAIN=standin "
        f"LEADSTREAM_SALESFORCE_CLIENT_ID={sf.client_id} "
        f"LEADSTREAM_SALESFORCE_CLIENT_SECRET={sf.client_secret}",
    )


def _print_held(standin: StandIn, first: tuple[str, ...], why: str) -> None:
    held = standin.held()
    print(f"--- the stand-in holds {len(held)} record(s) ({why})", flush=True)
    for line in render(held, first):
        print(line, flush=True)


def _cmd(args: argparse.Namespace) -> int:
    async def serve() -> None:
        standin, first, env = make(args.crm, args.host, args.port)
        await standin.start()
        print(
            f"{args.crm} stand-in listening on {standin.url}\n"
            f"point crm-sync at it: {env.format(url=standin.url)} "
            f"python -m stream_app crm-sync --crm {args.crm}\n"
            f"what it holds: kill -USR1 <pid>, GET {standin.url}/__standin/state, or at exit",
            file=sys.stderr,
            flush=True,
        )
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, lambda: _print_held(standin, first, "on request"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            _print_held(standin, first, "at exit")
            await standin.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


def add_command(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    cmd = sub.add_parser(
        "crm-standin",
        help="a local HubSpot or Salesforce stand-in that crm-sync can write to",
        formatter_class=formatter,
        description=(
            "Serve the CRM stand-in of tools/crm_standin on loopback: the endpoints crm-sync\n"
            "calls, every request validated against what the vendor published (docs/crm.md,\n"
            "'Tested against'). It prints where it listens and the settings that point\n"
            "crm-sync at it, and what it holds (properties per contact or Lead) on SIGUSR1\n"
            "and at exit. GET /__standin/state answers the same as JSON; POST\n"
            '/__standin/faults {"kind": "429"|"500"|"timeout"|"slow", "seconds": 2,\n'
            '"times": 1} queues faults for the next requests.'
        ),
        epilog=(
            "examples:\n"
            "  python -m tools crm-standin --crm hubspot --port 8097 &\n"
            "  LEADSTREAM_HUBSPOT_BASE_URL=http://127.0.0.1:8097 "
            "LEADSTREAM_HUBSPOT_TOKEN=standin-token \\\n"
            "    python -m stream_app crm-sync --crm hubspot --setup\n"
            "  kill -USR1 %1          # print what it holds now\n"
            "  python -m tools crm-standin --crm salesforce --port 8098\n"
            '  curl -s -XPOST localhost:8097/__standin/faults -d \'{"kind":"429","seconds":2}\''
        ),
    )
    cmd.add_argument("--crm", choices=["hubspot", "salesforce"], required=True)
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=8097, help="0: any free port")
    cmd.set_defaults(handler=_cmd)
