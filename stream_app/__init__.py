"""Leadstream: real-time lead qualification on Kafka.

The scoring core (``stream_app.scoring``) is pure; the Faust wiring, stores,
API and tools around it are thin. See README.md and docs/.
"""

__version__ = "0.1.0"
