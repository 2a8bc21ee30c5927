# The Leadstream image: `docker run IMAGE worker`, `... api`, `... collect`, `... notify`
# (any `python -m stream_app` command; no command: the help).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY schemas/ schemas/
COPY stream_app/ stream_app/
COPY rules/ rules/
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 leadstream \
    && mkdir -p /data && chown leadstream /data

USER leadstream
# Serve the worker's /health and /metrics beyond the container's loopback (probes, Prometheus).
ENV LEADSTREAM_WORKER_HOST=0.0.0.0
EXPOSE 8080 8081 8088
# Whichever of worker (8081), API (8080) or collector (8088) the container runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "stream_app", "health"]
ENTRYPOINT ["python", "-m", "stream_app"]
CMD ["--help"]
