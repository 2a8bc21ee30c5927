"""Stores behind the worker and the API (the Redis projection)."""
