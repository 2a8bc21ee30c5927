"""``leadstream notify``: stage transitions to Slack, Microsoft Teams or any webhook.

``messages`` builds what is posted (pure), ``journal`` remembers what was
posted across restarts, ``service`` consumes ``lead_stage_transitions`` and
posts, one rate-limited message at a time, never skipping one.
"""
