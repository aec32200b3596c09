# Images of the orchestrator's own processes (the pipelines have their own Dockerfiles).
#   docker build --target api    -t orchestrator-api:latest .
#   docker build --target worker -t orchestrator-worker:latest .
# `python -m devstack images` (make images) builds both, plus the pipelines.
#
# The base is debian:bookworm-slim with Debian's own Python 3.11, not python:3.11-slim: it is on
# every public registry and it is also the one tag the local stack seeds by debootstrap where no
# registry answers, so the same file builds in production and on an offline CI machine.
FROM debian:bookworm-slim AS base

# PEM text of extra CA certificates to trust while building (a TLS-inspecting proxy between the
# build and PyPI). Opt-in: empty by default, and then nothing is added. It is used for the build
# only; the runtime images trust what Debian's ca-certificates trusts plus this, which is what
# the host that built them trusts too.
ARG EXTRA_CA_CERT=""

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && if [ -n "$EXTRA_CA_CERT" ]; then \
         printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/extra-build-ca.crt \
         && update-ca-certificates; \
       fi \
    && python3 -m venv /opt/venv \
    && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin orchestrator

WORKDIR /app
# Dependencies first, from pyproject.toml alone, so that a source change rebuilds only the last
# layer. pip is pointed at Debian's bundle (which now includes EXTRA_CA_CERT): its own certifi
# bundle knows no local CA.
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['server']))" \
        > /tmp/requirements.txt \
    && pip install --cert /etc/ssl/certs/ca-certificates.crt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY orchestrator ./orchestrator
COPY hooks ./hooks
COPY worker ./worker
# The API reads pipeline specs (inputs, default resources) from the package; the pipeline code
# itself runs in the pipeline images.
COPY pipelines ./pipelines
RUN pip install --no-deps . && rm -rf build *.egg-info

# tus-js-client's browser bundle for the web page: `npm ci` from the committed lock file in a
# stage of its own, so that Node.js stays out of the api image (only tus.min.js goes in).
FROM debian:bookworm-slim AS web
ARG EXTRA_CA_CERT=""
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && if [ -n "$EXTRA_CA_CERT" ]; then \
         printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/extra-build-ca.crt \
         && update-ca-certificates; \
       fi
# Node reads its own CA list: add Debian's bundle (which now includes EXTRA_CA_CERT).
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /web
COPY orchestrator/web/package.json orchestrator/web/package-lock.json ./
# postinstall copies node_modules/tus-js-client/dist/tus.min.js to static/vendor/.
RUN npm ci --no-audit --no-fund --loglevel=error && test -s static/vendor/tus.min.js

FROM base AS api
# Served at /static/vendor/tus.min.js, beside the package's other static files: in /app (what
# `python -m orchestrator` in WORKDIR imports) and in the installed package (Debian 12's Python
# is 3.11). The check fails the build should either move.
COPY --from=web /web/static/vendor/tus.min.js ./orchestrator/web/static/vendor/tus.min.js
COPY --from=web /web/static/vendor/tus.min.js \
     /opt/venv/lib/python3.11/site-packages/orchestrator/web/static/vendor/tus.min.js
RUN for dir in /app /; do \
      (cd "$dir" && python -c "from orchestrator.api.pages import VENDOR_FILE as f; assert f.is_file(), f"); \
    done
USER 10001
# 8000: the public API; 8001: the internal tusd hook listener (HOOK_HOST/HOOK_PORT), never
# published.
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)" || exit 1
# `serve` runs the Alembic migrations before it listens.
CMD ["python", "-m", "orchestrator", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
# The worker drives the host's Docker engine through its socket, so it runs as root inside its
# own container; the pipelines it starts run as uid 10001 with every capability dropped.
CMD ["python", "-m", "worker"]
