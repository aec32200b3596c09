# Images of the orchestrator's own processes (the pipelines have their own Dockerfiles).
#   docker build --target api    -t orchestrator-api .
#   docker build --target worker -t orchestrator-worker .
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY hooks ./hooks
COPY worker ./worker
COPY pipelines ./pipelines
RUN pip install . && useradd --uid 10001 --create-home orchestrator

FROM base AS api
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)" || exit 1
CMD ["python", "-m", "orchestrator", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
# The worker drives the host's Docker engine through its socket, so it runs as root inside its
# own container; the pipelines it starts run as uid 10001 with every capability dropped.
CMD ["python", "-m", "worker"]
