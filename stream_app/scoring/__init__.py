"""The pure scoring core: rules, per-lead state, engine, replay, funnel.

No Faust, Kafka, Redis, RocksDB, HTTP, asyncio or clock reads in here (a ruff
rule in ``stream_app/scoring/ruff.toml`` enforces it): it is tested alone,
fast, with literal scenarios and hypothesis properties.
"""
