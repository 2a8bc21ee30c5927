"""Command-line entry point: ``python -m stream_app COMMAND`` (or ``leadstream COMMAND``).

Every command's ``--help`` shows worked examples. Errors Leadstream expects
(bad rules file, a port that is taken, unreadable input) end with one
clear message and exit status 2, not a traceback. The developer commands
(stack, demo, generate) are ``python -m tools`` (``tools/cli.py``), which
reuses ``Formatter`` and ``run``; nothing here imports ``tools``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from stream_app.errors import LeadstreamError

Handler = Callable[[argparse.Namespace], int]

MAIN_EPILOG = """\
commands, in the order you meet them:
  worker                 the Faust worker: live scoring from Kafka
  challenger             a shadow worker: the champion's inputs scored with other rules
  health                 probe /health (or /ready) of this machine's worker, API, collector
  api                    the read-only query API over the Redis projection
  collect                Segment's HTTP tracking API for sites, libraries and webhooks
  notify                 the sales bot: transitions to Slack, Teams or a webhook
  crm-sync               stages and scores into HubSpot or Salesforce contacts / Leads
  erase                  erase a person (lead id or e-mail): records, visitors, projection
  simulate               offline replay: score a JSON-lines event file with a rules file
  rules check            validate a rules file and print its summary
  evaluate               judge a rules file against won and lost deals (AUC, lift per rule)
  learn                  propose better points from outcomes (needs leadstream[learn])
  compare                what changes between two simulate outputs (or two live topics)
  settings               print the effective settings (secrets masked)

developer tools, in a checkout (`python -m tools --help`): the local Kafka + Redis
stack, the demo, the seeded traffic generator.

examples:
  python -m tools stack up
  python -m stream_app rules check rules/default.yaml
  python -m stream_app simulate --rules rules/default.yaml events.jsonl --out transitions.jsonl
"""


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _cmd_settings(args: argparse.Namespace) -> int:
    from stream_app.config import Settings  # noqa: PLC0415

    print(json.dumps(Settings().public_view(), indent=2))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.kafka import check_copartitioned, ensure_topics  # noqa: PLC0415
    from stream_app.topics import TopicNames  # noqa: PLC0415
    from stream_app.worker.app import Worker, create_app, topic_configs_of, worker_topics  # noqa: PLC0415
    from stream_app.worker.health import check_port  # noqa: PLC0415

    settings = Settings()
    check_port(settings.worker_host, settings.worker_port)
    app = create_app(settings)  # loads and checks the rules first: a bad file stops here
    for name, configs in topic_configs_of(settings).items():  # before the rest: theirs
        asyncio.run(ensure_topics(settings, [name], configs))
    asyncio.run(ensure_topics(settings, worker_topics(settings)))
    names = TopicNames.of(settings)
    asyncio.run(check_copartitioned(settings, [*names.inputs, names.repartition(settings.app_id)]))
    from stream_app.logs import logging_config  # noqa: PLC0415

    worker = Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings),
    )
    worker.execute_from_commandline()
    return 0


def _cmd_challenger(args: argparse.Namespace) -> int:
    """The worker again, under the challenger's settings (``commands.challenger``)."""
    import os  # noqa: PLC0415

    from stream_app.commands.challenger import challenger_env  # noqa: PLC0415
    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.rules_file import load_rules  # noqa: PLC0415

    load_rules(args.rules)  # a bad file stops here, before anything starts
    champion = Settings()
    env = challenger_env(champion, args.rules.resolve(), args.port)
    if env["LEADSTREAM_APP_ID"] == champion.app_id:
        raise LeadstreamError("the challenger needs its own app id")
    print(
        f"challenger {champion.challenger}: rules {args.rules}, reading "
        f"{env['LEADSTREAM_INPUT_TOPICS']}; writing {env['LEADSTREAM_TOPIC_PREFIX']}* topics "
        f"and Redis keys {env['LEADSTREAM_REDIS_KEY_PREFIX']}*; app id {env['LEADSTREAM_APP_ID']}",
        file=sys.stderr,
    )
    os.environ.update(env)  # the worker and its projector child read these
    return _cmd_worker(args)


CHALLENGER_EPILOG = """what it is: a second worker that scores the champion's own input topics with
another rules file (a proposal from `learn`) and publishes to its own topics:
its app id is the champion's plus -<LEADSTREAM_CHALLENGER>, its topic prefix
<prefix><name>., its Redis keys <LEADSTREAM_REDIS_KEY_PREFIX><name>:, its RocksDB
under <LEADSTREAM_DATA_DIR>-<name>, its /health and /metrics on --port (default
the champion's LEADSTREAM_WORKER_PORT + 1). Sales feedback reaches it too (it
reads the same sales_feedback topic). Run no notifier or CRM sync on its topics:
nobody hears from a challenger. The query API shows its funnel beside the
champion's (GET /funnels, the dashboard's funnel page) while it has leads.

start it with the champion's own settings (the same environment or .env), so it
derives its names from them; compare the two live:
  python -m stream_app compare kafka:lead_stage_transitions \
      kafka:challenger.lead_stage_transitions

promote: docs/outcomes.md (copy the file over LEADSTREAM_RULES_PATH, SIGHUP the
champion, stop the challenger).

examples:
  python -m stream_app challenger --rules proposed.yaml
  LEADSTREAM_CHALLENGER=q3 python -m stream_app challenger --rules q3.yaml --port 8091
"""


def _cmd_health(args: argparse.Namespace) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from stream_app.config import Settings  # noqa: PLC0415

    settings = Settings()
    ports = (settings.worker_port, settings.api_port, settings.collect_port)
    urls = args.urls or [f"http://127.0.0.1:{port}" for port in ports if port]
    path = "/ready" if args.ready else "/health"
    for url in urls:
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=args.timeout) as answer:
                if answer.status == 200:
                    print(f"{url}{path}: 200")
                    return 0
        except urllib.error.HTTPError as exc:  # answered, not 200 (e.g. 503: not ready)
            body = exc.read().decode(errors="replace")[:200]
            exc.close()
            print(f"{url}{path}: {exc.code} {body}", file=sys.stderr)
        except (urllib.error.URLError, OSError) as exc:
            print(f"{url}{path}: {exc}", file=sys.stderr)
    return 1


def _cmd_projector(args: argparse.Namespace) -> int:
    from stream_app.serve.projector import main as projector_main  # noqa: PLC0415
    from stream_app.serve.projector import repair_attribution  # noqa: PLC0415

    return repair_attribution() if args.repair_attribution else projector_main()


def _cmd_api(args: argparse.Namespace) -> int:
    from stream_app.serve.api.app import main as api_main  # noqa: PLC0415

    return api_main()


def _cmd_collect(args: argparse.Namespace) -> int:
    from stream_app.ingest.collect import main as collect_main  # noqa: PLC0415

    return collect_main()


COLLECT_EPILOG = """\
settings (environment, or .env):
  LEADSTREAM_COLLECT_WRITE_KEYS     accepted write keys, comma-separated (required; secret)
  LEADSTREAM_COLLECT_HOST           where it listens (127.0.0.1)
  LEADSTREAM_COLLECT_PORT           (8088)
  LEADSTREAM_COLLECT_TOPIC          where it writes (default: the first input topic)
  LEADSTREAM_COLLECT_MAX_BODY_BYTES larger bodies get a 413 (512 KiB)
  LEADSTREAM_COLLECT_CORS_ORIGINS   origins whose pages may post (*: any, no credentials)
  LEADSTREAM_HTTP_HEADER_TIMEOUT_SECONDS / _BODY_TIMEOUT_SECONDS
                                    slow clients: headers closed after 10 s, a body 408 after 30

examples:
  LEADSTREAM_COLLECT_WRITE_KEYS=wk_site python -m stream_app collect
  curl -u wk_site: localhost:8088/v1/track -H 'content-type: application/json' -d \\
    '{"event": "Demo Requested", "userId": "u1", "messageId": "m1",
      "timestamp": "2026-11-02T10:00:00Z"}'
  # the official Python library, pointed here:
  python -c 'from segment.analytics import Client
  c = Client("wk_site", host="http://127.0.0.1:8088", sync_mode=True)
  c.page(anonymous_id="a1", properties={"path": "/pricing"})'

answers: 200 {"success": true} once the broker acknowledged every message written;
a message the worker would dead-letter is not written but listed in "refused" (index,
reason, error); 503 when the broker did not acknowledge (retry: the worker counts a
messageId once); 400 when every message was refused or the body is not Segment-spec
JSON; 401 for a missing or unknown key; 403 for a page of an origin not allowed; 408
for a body too slow; 413 for a body over the limit; errors are JSON with "error".
GET /health, /ready (the broker answers), /metrics (Prometheus), without CORS.
"""


def _cmd_notify(args: argparse.Namespace) -> int:
    from stream_app.notify.service import main as notify_main  # noqa: PLC0415

    return notify_main()


NOTIFY_EPILOG = """\
settings (environment, or .env):
  LEADSTREAM_NOTIFY_KIND            slack (Block Kit), teams (Adaptive Card) or webhook
                                    (the transition JSON with CloudEvents ce-* headers)
  LEADSTREAM_NOTIFY_URL             the webhook URL (secret: never logged)
  LEADSTREAM_NOTIFY_STAGES          stages to announce (mql,sql,pql), or all
  LEADSTREAM_NOTIFY_LINK_TEMPLATE   a CRM link, e.g. https://crm.example.com/leads/{lead_id}
  LEADSTREAM_NOTIFY_MAX_PER_SECOND  posts per second (1: Slack's limit); a burst in
                                    between becomes one digest message
  LEADSTREAM_NOTIFY_DIGEST_MAX      transitions per digest (20)
  LEADSTREAM_NOTIFY_DIR             where the ids already posted are kept
  LEADSTREAM_NOTIFY_START           a new group starts at the earliest transition (the
                                    default) or only at new ones (latest)

examples:
  export LEADSTREAM_NOTIFY_URL=https://hooks.slack.com/services/T000/B000/XXXX
  LEADSTREAM_NOTIFY_STAGES=sql python -m stream_app notify      # only SQLs, to #sales
  LEADSTREAM_NOTIFY_KIND=teams LEADSTREAM_NOTIFY_URL=https://prod-00.westus.logic.azure.com/... \\
      python -m stream_app notify
  python -m tools sink --port 8099 &    # a local stand-in (a developer tool, in the repository)
  LEADSTREAM_NOTIFY_URL=http://127.0.0.1:8099/hook python -m stream_app notify

guarantee: a transition's offset is committed only after its post got a 2xx; a failed
post is retried with backoff until it does (Retry-After obeyed), so none is skipped.
Duplicates (a worker's re-publication, a restart) are dropped by transition_id; only a
post acknowledged just before a kill -9 can be repeated, once.
"""


def _cmd_crm_sync(args: argparse.Namespace) -> int:
    from stream_app.config import Settings  # noqa: PLC0415
    from stream_app.crm import service  # noqa: PLC0415
    from stream_app.crm.calls import CrmError  # noqa: PLC0415

    settings = Settings()
    crm = args.crm or settings.crm
    if crm is None:
        raise CrmError("name the CRM: --crm hubspot or --crm salesforce (or LEADSTREAM_CRM)")
    if args.setup:
        for line in service.setup(settings, crm):
            print(line)
        return 0
    return service.main(settings, crm)


CRM_EPILOG = """\
settings (environment, or .env; docs/crm.md has every field written and the CRM set-up):
  LEADSTREAM_CRM                      hubspot or salesforce (--crm wins)
  LEADSTREAM_CRM_BATCH_MAX            leads per call (100; HubSpot's cap 100, Salesforce's 200)
  LEADSTREAM_CRM_BATCH_SECONDS        longest it gathers records before writing (1)
  LEADSTREAM_CRM_CALLS_PER_TEN_SECONDS     CRM calls in any 10 s (100; HubSpot Pro/Enterprise: 190)
  LEADSTREAM_CRM_TIMEOUT_SECONDS      a call unanswered this long is retried (30)
  LEADSTREAM_CRM_START                a new group starts at the earliest record, or latest
  LEADSTREAM_CRM_HOST / _PORT         where /health, /ready, /metrics are served (127.0.0.1:8083)
 HubSpot (a private app's token; scopes crm.objects.contacts.read/write, and for --setup
 crm.schemas.contacts.read/write):
  LEADSTREAM_HUBSPOT_TOKEN            the access token (secret: never logged)
  LEADSTREAM_HUBSPOT_ID_PROPERTY      the unique property holding the lead id
                                      (leadstream_lead_id; email when lead ids are addresses)
  LEADSTREAM_HUBSPOT_LIFECYCLE        stage:lifecyclestage pairs written on a transition
  LEADSTREAM_HUBSPOT_LIFECYCLE_BACKWARD  true: a recycled lead's lifecycle stage goes back
                                      (cleared, then set); false (default): it stays
  LEADSTREAM_HUBSPOT_LEAD_STATUS      stage:hs_lead_status pairs (recycled:BAD_TIMING)
  LEADSTREAM_HUBSPOT_BASE_URL         https://api.hubapi.com (a stand-in's URL in tests)
 Salesforce (a connected app; OAuth 2.0 client credentials, or the JWT bearer flow):
  LEADSTREAM_SALESFORCE_DOMAIN        your My Domain, e.g. acme.my
  LEADSTREAM_SALESFORCE_CLIENT_ID     the consumer key
  LEADSTREAM_SALESFORCE_CLIENT_SECRET the consumer secret (secret), or instead
  LEADSTREAM_SALESFORCE_USERNAME + LEADSTREAM_SALESFORCE_PRIVATE_KEY_PATH   (JWT bearer)
  LEADSTREAM_SALESFORCE_EXTERNAL_ID_FIELD  the Lead's External ID field (Leadstream_Lead_Id__c)
  LEADSTREAM_SALESFORCE_STATUS        stage:Status pairs written on a transition
  LEADSTREAM_SALESFORCE_BASE_URL      every call sent here instead (a stand-in; tests only)

examples:
  export LEADSTREAM_HUBSPOT_TOKEN=pat-na1-...
  python -m stream_app crm-sync --crm hubspot --setup   # the property group and properties
  python -m stream_app crm-sync --crm hubspot
  LEADSTREAM_HUBSPOT_LIFECYCLE_BACKWARD=true python -m stream_app crm-sync --crm hubspot
  LEADSTREAM_SALESFORCE_DOMAIN=acme.my LEADSTREAM_SALESFORCE_CLIENT_ID=3MVG9... \\
    LEADSTREAM_SALESFORCE_CLIENT_SECRET=... python -m stream_app crm-sync --crm salesforce
  python -m tools crm-standin --crm hubspot --port 8097 & # a local stand-in (developer tool)
  LEADSTREAM_HUBSPOT_BASE_URL=http://127.0.0.1:8097 LEADSTREAM_HUBSPOT_TOKEN=x \\
    python -m stream_app crm-sync --crm hubspot

guarantee: only each lead's newest state in a batch is written; a record older than one
already written is never written (Redis keeps what each lead got last); offsets are
committed once the CRM took the batch; 429 (Retry-After obeyed), 5xx and timeouts are
retried with backoff, never skipped; a lead the CRM refuses for good (a 4xx) goes to
lead_dead_letters (reason crm_refused) with the CRM's own error text.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stream_app",
        description="Leadstream: real-time lead scoring and MQL/SQL/PQL qualification on Kafka.",
        epilog=MAIN_EPILOG,
        formatter_class=Formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    settings = sub.add_parser(
        "settings",
        help="print the effective settings as JSON (secrets masked)",
        description="Settings come from LEADSTREAM_* environment variables or .env.",
    )
    settings.set_defaults(handler=_cmd_settings)

    worker = sub.add_parser(
        "worker",
        help="run the Faust worker: score live events from Kafka",
        formatter_class=Formatter,
        description=(
            "Consume the input topics, score every event, publish stage transitions and\n"
            "score updates. Per-lead state lives in RocksDB tables under LEADSTREAM_DATA_DIR,\n"
            "backed by Kafka changelog topics. Settings: LEADSTREAM_* (see `settings`).\n"
            "SIGHUP reloads LEADSTREAM_RULES_PATH (a broken file is refused, the rules in\n"
            "force stay); SIGTERM stops gracefully. /health /ready /metrics on\n"
            "LEADSTREAM_WORKER_PORT."
        ),
        epilog=(
            "examples:\n"
            "  python -m stream_app worker\n"
            "  LEADSTREAM_RULES_PATH=rules/product_led.yaml python -m stream_app worker"
        ),
    )
    worker.set_defaults(handler=_cmd_worker)

    challenger = sub.add_parser(
        "challenger",
        help="a shadow worker: the champion's inputs scored with another rules file",
        formatter_class=Formatter,
        description=(
            "Run a worker that reads the champion's input topics and scores them with\n"
            "another rules file, under names of its own (see below); nobody is notified."
        ),
        epilog=CHALLENGER_EPILOG,
    )
    challenger.add_argument("--rules", required=True, type=Path, help="the challenger's rules")
    challenger.add_argument(
        "--port", type=int, help="its /health, /ready, /metrics port (default: the champion's + 1)"
    )
    challenger.set_defaults(handler=_cmd_challenger)

    health = sub.add_parser(
        "health",
        help="exit 0 if this machine's worker, API or collector answers /health (a probe)",
        formatter_class=Formatter,
        description=(
            "Asks GET /health of the worker (LEADSTREAM_WORKER_PORT), the API\n"
            "(LEADSTREAM_API_PORT) and the collector (LEADSTREAM_COLLECT_PORT) on 127.0.0.1,\n"
            "or of the URLs given, and exits 0 as soon as one answers 200: the image's\n"
            "HEALTHCHECK, whichever of them the container runs. --ready asks /ready."
        ),
        epilog=(
            "examples:\n"
            "  python -m stream_app health\n"
            "  python -m stream_app health --ready http://127.0.0.1:8081"
        ),
    )
    health.add_argument("urls", nargs="*", help="base URLs to ask (default: the three ports)")
    health.add_argument("--ready", action="store_true", help="ask /ready instead of /health")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds per request")
    health.set_defaults(handler=_cmd_health)

    projector = sub.add_parser(
        "projector",
        help="feed the Redis projection from the score updates, transitions and SLA breaches",
        formatter_class=Formatter,
        description=(
            "Reads lead_score_updates, lead_stage_transitions and lead_sla_breaches in its own\n"
            "consumer group (<app id>-projection) and writes each lead's newest state, its\n"
            "transitions and the recent SLA breaches\n"
            "to Redis, committing only what Redis took. The worker runs one as its child\n"
            "(LEADSTREAM_PROJECTOR=child, the default); with LEADSTREAM_PROJECTOR=none run\n"
            "it yourself, one or several.\n\n"
            "--repair-attribution fixes a projection written before the projection moved\n"
            "a lead whose first-touch source or campaign changed (it counted the lead\n"
            "under the old value too): each membership is checked against the lead's\n"
            "newest update, in place, beside a running projector."
        ),
        epilog=(
            "examples:\n"
            "  LEADSTREAM_PROJECTOR=none python -m stream_app worker &\n"
            "  python -m stream_app projector\n"
            "  python -m stream_app projector --repair-attribution"
        ),
    )
    projector.add_argument(
        "--repair-attribution",
        action="store_true",
        help="remove stale source/campaign memberships, log how many, and exit",
    )
    projector.set_defaults(handler=_cmd_projector)

    api = sub.add_parser(
        "api",
        help="serve the read-only query API from Redis",
        formatter_class=Formatter,
        description=(
            "Lead, top leads, accounts, funnel, health, readiness, Prometheus metrics;\n"
            "OpenAPI at /openapi.json. Reads only Redis, so it runs apart from the worker."
        ),
        epilog=(
            "examples:\n"
            "  python -m stream_app api\n"
            "  curl -s localhost:8080/leads?stage=sql&limit=5\n"
            "  LEADSTREAM_API_TOKEN=s3cret python -m stream_app api   # bearer token required"
        ),
    )
    api.set_defaults(handler=_cmd_api)

    collect = sub.add_parser(
        "collect",
        help="Segment's HTTP tracking API in front of Kafka: sites, Segment libraries, webhooks",
        formatter_class=Formatter,
        description=(
            "Accept /v1/batch, /v1/page, /v1/track, /v1/identify, /v1/alias, /v1/group as\n"
            "Segment's tracking API does (write key as Basic auth) and write each message to\n"
            "Kafka, keyed by userId else anonymousId, where the worker reads it. A process of\n"
            "its own: the query API stays read-only."
        ),
        epilog=COLLECT_EPILOG,
    )
    collect.set_defaults(handler=_cmd_collect)

    notify = sub.add_parser(
        "notify",
        help="the sales bot: post stage transitions to Slack, Microsoft Teams or a webhook",
        formatter_class=Formatter,
        description=(
            "Consume lead_stage_transitions in its own consumer group (<app id>-notify) and\n"
            "post each transition to a stage you chose: who, from -> to, score, grade, why\n"
            "and the trigger, with a link to your CRM. Runs apart from the worker."
        ),
        epilog=NOTIFY_EPILOG,
    )
    notify.set_defaults(handler=_cmd_notify)

    crm_sync = sub.add_parser(
        "crm-sync",
        help="keep each lead's HubSpot contact or Salesforce Lead current (stage, scores)",
        formatter_class=Formatter,
        description=(
            "Consume lead_score_updates and lead_stage_transitions in its own consumer group\n"
            "(<app id>-crm-<crm>) and upsert each lead's newest state into the CRM, up to 100\n"
            "(HubSpot) or 200 (Salesforce) leads a call: Leadstream's own properties, and on a\n"
            "transition the fields sales filter on (HubSpot lifecyclestage and hs_lead_status,\n"
            "Salesforce Lead Status). An erased lead's Leadstream properties are cleared.\n"
            "Won and lost deals come back through `collect` (/v1/webhooks/hubspot, /salesforce)."
        ),
        epilog=CRM_EPILOG,
    )
    crm_sync.add_argument(
        "--crm", choices=("hubspot", "salesforce"), help="the CRM (default: LEADSTREAM_CRM)"
    )
    crm_sync.add_argument(
        "--setup",
        action="store_true",
        help="create what Leadstream writes to (HubSpot: its property group and properties; "
        "Salesforce: list the Lead fields to create), print it, and exit",
    )
    crm_sync.set_defaults(handler=_cmd_crm_sync)

    from stream_app.commands import compare, erase, evaluate, learn, replay  # noqa: PLC0415

    erase.add_command(sub, Formatter)
    replay.add_commands(sub, Formatter)
    evaluate.add_command(sub, Formatter)
    learn.add_command(sub, Formatter)
    compare.add_command(sub, Formatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


#: The env prefix of each settings class whose validation errors are reported by name.
SETTINGS_PREFIXES = {"Settings": "LEADSTREAM_"}


def run(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    settings_prefixes: dict[str, str] = SETTINGS_PREFIXES,
) -> int:
    """Parse ``argv`` and run the command's handler; an error Leadstream expects (a
    ``LeadstreamError``, a bad setting) is one line on stderr and exit status 2."""
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LeadstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        prefix = settings_prefixes.get(exc.title)
        if prefix is None:
            raise
        for err in exc.errors():
            name = prefix + "_".join(str(p) for p in err["loc"]).upper()
            print(
                f"error: setting {name}: {err['msg']} (got {err.get('input')!r:.60})",
                file=sys.stderr,
            )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
