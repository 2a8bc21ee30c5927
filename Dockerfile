# The Leadstream image: worker (`python -m stream_app worker`) and API (`... api`).
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
CMD ["python", "-m", "stream_app", "--help"]
