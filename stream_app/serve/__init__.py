"""What serves the scores: the Redis projection and the query API with its dashboard.

``projector.py`` is the projector (a child of the worker, or ``python -m stream_app
projector``) that writes score updates, transitions and SLA breaches into Redis; ``stores/`` the
Redis projection (keys, Lua scripts, the fit x engagement grid); ``api/`` the query API
(``python -m stream_app api``); ``dashboard/`` the pages the API serves under ``/ui/``.
"""
