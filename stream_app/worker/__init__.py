"""The worker process (``python -m stream_app worker``): Faust, Kafka and RocksDB.

It reads the input topics, scores each lead with the pure core (``stream_app.scoring``),
keeps per-lead records in a RocksDB table backed by a Kafka changelog, and writes score
updates, transitions, breaches and erasures to their topics. ``app.py`` builds it;
``agents.py`` holds the agent, timers and tasks; ``pipeline.py`` the per-partition batch;
``records.py`` the record cache, due index and writer; ``ordering.py`` the hold-back that
keeps repartitioned messages in time order; ``watch.py`` the partition watch;
``health.py`` its /health, /ready and /metrics; ``faust_fixes.py`` two fixes to Faust;
``restore.py`` the records table restored from its changelog in bulk.
"""
