"""What brings events in: the collector and the Segment-spec mapping.

``collect.py`` is the collector (``python -m stream_app collect``), Segment's HTTP
tracking API in front of Kafka; ``segment.py`` maps Segment-spec messages to native
events (used by the collector and by the worker's decoder); ``tracks.py`` reads the
track-name mapping (``segment_tracks.yaml`` ships the defaults).
"""
