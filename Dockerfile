# syntax=docker/dockerfile:1
# crunch-control: the engine and the `crunch` command; by default `crunch serve` (the
# workers, the HTTP API and the web UI) on port 8000, with its data in the /data volume
# (the embedded SQLite file unless CRUNCH_DATABASE_URL is set; see docker-compose.yml).
#
#   docker build -t crunch-control .
#   docker run --rm -p 8000:8000 crunch-control
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 crunch \
    && mkdir -p /data \
    && chown crunch:crunch /data

# The engine, installed from this repository (a wheel build: packs and migrations inside).
WORKDIR /opt/crunch-control
COPY pyproject.toml README.md ./
COPY crunch_engine ./crunch_engine
COPY crunch_tui ./crunch_tui
COPY packs ./packs
RUN pip install . \
    && crunch --version

USER crunch
WORKDIR /home/crunch

ENV CRUNCH_DATA_DIR=/data \
    CRUNCH_API_HOST=0.0.0.0 \
    CRUNCH_API_PORT=8000

EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["crunch", "serve", "--host", "0.0.0.0"]
