"""Read-only HTTP API over the Redis projection."""
