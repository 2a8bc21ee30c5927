"""Leadstream: real-time lead qualification on Kafka.

Folders say which process runs the code in them:

- ``scoring/``  the pure core: events in, state and outputs out (no I/O);
- ``worker/``   the Faust worker that runs the core on the input topics;
- ``serve/``    the projector into Redis, the query API and its dashboard;
- ``ingest/``   the collector and the Segment-spec mapping;
- ``notify/``   the notifier (the sales bot);
- ``commands/`` the command line that starts each of them, ``simulate``, ``erase``.

The modules at this level are shared by several processes: settings (``config``),
errors, logs, Kafka helpers and security (``kafka``), topic names, the bytes of every
topic (``codec``, ``messages``, ``cloudevents``), the rules file reader and the HTTP
plumbing the servers share (``httpserver``), and running until a signal (``lifecycle``).
"""

__version__ = "0.1.0"
