"""Developer commands: ``python -m tools COMMAND`` (the Makefile's stack and demo targets).

They run from a checkout (the repository root on ``sys.path``, as the tests and the
bench do) and are no part of the product's CLI or image: ``python -m stream_app``
runs Leadstream; this runs the things around it on a developer's machine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stream_app.commands.cli import SETTINGS_PREFIXES, Formatter, run

EPILOG = """\
commands:
  stack up|down|status   local Kafka (KRaft) + Redis on loopback, no Docker needed
  stack tools            the classpath of Kafka's own tools (console producer, ...)
  demo                   realistic traffic through the live stack (what `make demo` runs)
  generate               write seeded, realistic prospect traffic as JSON lines
  browser                install Debian's chromium where missing (the dashboard's tests)

examples:
  python -m tools stack up
  python -m tools generate --leads 1000 --seed 7 > events.jsonl
  python -m stream_app simulate --rules rules/default.yaml events.jsonl
"""


def _cmd_stack(args: argparse.Namespace) -> int:
    from tools import devstack  # noqa: PLC0415  (pydantic-settings only; --help stays fast)

    if args.action == "up":
        devstack.up()
        return devstack.status()
    if args.action == "down":
        from tools.demo import stop_background  # noqa: PLC0415

        stopped = stop_background()  # the demo's processes first: they use the servers
        for name in stopped:
            devstack.say(f"stopped the demo's {name}")
        if not stopped + devstack.down():
            devstack.say("nothing of ours was running")
        return 0
    if args.action == "tools":
        from tools.kafka_tools import classpath  # noqa: PLC0415

        print(classpath())
        return 0
    return devstack.status()


def _cmd_demo(args: argparse.Namespace) -> int:
    from tools import demo  # noqa: PLC0415

    if args.stop:
        stopped = demo.stop_background()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
        return 0
    return demo.main(prospects=args.prospects, seed=args.seed, quiet_s=args.quiet_seconds)


def _cmd_browser(args: argparse.Namespace) -> int:
    from tools.browser import ensure_chromium  # noqa: PLC0415

    ensure_chromium()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools",
        description="Leadstream's developer tools: the local stack, the demo, seeded traffic.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stack = sub.add_parser(
        "stack",
        help="start, stop or inspect the local Kafka + Redis stack",
        formatter_class=Formatter,
        description=(
            "Run Apache Kafka (KRaft, resolved from Maven Central with mvn) and Redis\n"
            "(Debian's redis-server) on 127.0.0.1 under .stack/, without Docker.\n"
            "`up` is idempotent and reuses servers that already answer; `down` stops\n"
            "only the processes `up` (and the demo) started (pid file + process start time)."
        ),
        epilog=(
            "examples:\n"
            "  python -m tools stack up       # start or reuse, wait until both answer\n"
            "  python -m tools stack status   # exit 0 only if both answer\n"
            "  python -m tools stack down\n"
            '  java -cp "$(python -m tools stack tools)" \\\n'
            "      org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 \\\n"
            "      --topic rudder-events     # Kafka's console producer, as a pipeline writes\n"
            "settings: LEADSTREAM_STACK_DIR, LEADSTREAM_STACK_KAFKA_PORT (9092),\n"
            "  LEADSTREAM_STACK_CONTROLLER_PORT (9093), LEADSTREAM_STACK_REDIS_PORT (6379),\n"
            "  LEADSTREAM_STACK_BROKERS (1), LEADSTREAM_STACK_KAFKA_HEAP (1g),\n"
            "  LEADSTREAM_STACK_START_TIMEOUT (120 s)"
        ),
    )
    stack.add_argument("action", choices=["up", "down", "status", "tools"])
    stack.set_defaults(handler=_cmd_stack)

    demo = sub.add_parser(
        "demo",
        help="realistic traffic through the live stack, transitions printed like a sales bot",
        formatter_class=Formatter,
        description=(
            "Start the worker, the query API, the notifier and a local webhook sink standing\n"
            "in for Slack in the background (or reuse them), each awaited on its own\n"
            "readiness signal, produce seeded traffic for simulated prospects, print each\n"
            "stage transition as a sales bot would and, beside them (slack>), what the\n"
            "notifier posted; then show the funnel from the API and leave it up. The\n"
            "dashboard's address (/ui/ on the API: live, in a browser) is printed first.\n"
            "Needs the stack: `make demo` starts it first; `make stack-down` stops it all."
        ),
        epilog="examples:\n  python -m tools demo --prospects 300 --seed 7\n"
        "  python -m tools demo --stop",
    )
    demo.add_argument("--prospects", type=int, default=300, help="simulated prospects")
    demo.add_argument("--seed", type=int, default=7, help="traffic seed")
    demo.add_argument(
        "--quiet-seconds",
        type=float,
        default=15,
        help="stop following transitions after this long without one",
    )
    demo.add_argument(
        "--stop", action="store_true", help="stop the demo's worker, API, notifier and sink"
    )
    demo.set_defaults(handler=_cmd_demo)

    browser = sub.add_parser(
        "browser",
        help="install Debian's chromium where missing (the dashboard's browser tests drive it)",
        formatter_class=Formatter,
        description=(
            "Find chromium (LEADSTREAM_CHROMIUM, else on PATH, else /usr/bin/chromium) and\n"
            "install Debian's package with apt-get when it is missing. Playwright drives\n"
            "this browser by its path and never downloads one (make test runs this)."
        ),
    )
    browser.set_defaults(handler=_cmd_browser)

    from tools import generate, sink  # noqa: PLC0415

    generate.add_command(sub, Formatter)
    sink.add_command(sub, Formatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prefixes = {**SETTINGS_PREFIXES, "StackSettings": "LEADSTREAM_STACK_"}
    return run(build_parser(), argv, prefixes)
