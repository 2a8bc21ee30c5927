"""The pure scoring core: rules, per-lead state, engine, replay, funnel.

No Faust, Kafka, Redis, RocksDB, HTTP, asyncio, file reads or clock reads in
here (a ruff rule in ``stream_app/scoring/ruff.toml`` enforces the imports):
it is tested alone, fast, with literal scenarios and hypothesis properties.
Reading a rules file is ``stream_app.rules_file.load_rules``.

Modules, by concept:

- ``spec`` the rules file's model and checks; ``rules`` its compiled form and
  ``parse_rules``; ``matching`` conditions compiled to predicates;
- ``state`` a lead's state (``LeadState``), its stored form, times, keys;
- ``engine`` the entry points: ``apply_event``, ``advance``, ``merge_anonymous``,
  ``score_update``, ``next_change_at``;
- ``counting`` one event into the state (de-duplication, profile, buckets);
  ``signals`` SQL-checklist signals; ``buckets`` windows, caps, folding old history;
- ``view`` the scores at an event time (fit, decayed capped engagement, grade);
- ``stages`` where a lead should be, moving it, sales feedback;
  ``outlook`` when decay alone changes a lead's stage (``next_change_at``);
  ``sweep`` when that or an SLA deadline is due, and making the change;
  ``sla`` the marketing-sales SLA's deadline;
- ``identity`` merging an anonymous visitor into a lead; ``outputs`` transitions
  and score updates;
- ``replay`` identity resolution plus the engine over a sequence of events (the
  oracle); ``funnel`` and ``accounts`` metrics over states.
"""
