#!/usr/bin/env bash
# Install Stoplight's Prism 5 (the OpenAPI mock and validation server, from npm) for the JIRA
# contract tests (tests/jira/test_prism.py), into a fixed prefix outside the repository.
#
# Idempotent: when the wanted major version is already there it does nothing (well under a second).
# Needs Node.js 18+ with npm (installed from Debian's packages if missing, as root) and the
# npm registry; root only for that and if PREFIX is not writable. The last line printed is the prism binary's path (tests/jira/prism.py finds
# it there itself, or through TB_PRISM, or on PATH).
set -euo pipefail

PREFIX="${TB_PRISM_PREFIX:-/opt/tracker-bridge/prism}"
PACKAGE="@stoplight/prism-cli@5"
BIN="$PREFIX/node_modules/.bin/prism"
log() { printf '[install-prism] %s\n' "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-prism.sh: npm is not installed (as root: apt-get install nodejs npm)" >&2
        exit 1
    fi
    log "installing Debian's nodejs and npm"
    apt-cache show npm >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi

start=$(date +%s)
PKG_JSON="$PREFIX/node_modules/@stoplight/prism-cli/package.json"
installed() {  # the installed version, read from its package.json (node starts in ~5 s here)
    [ -x "$BIN" ] && [ -f "$PKG_JSON" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PKG_JSON"
}
if installed | grep -q '^5\.'; then
    log "prism $(installed) already installed in $PREFIX"
else
    log "installing $PACKAGE into $PREFIX (npm, ~15 s)"
    mkdir -p "$PREFIX"
    # a package.json of its own, so npm installs here and not into a parent project
    [ -f "$PREFIX/package.json" ] || echo '{"name": "tracker-bridge-prism", "private": true}' \
        > "$PREFIX/package.json"
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$PACKAGE" >&2
    log "prism $(installed) installed in $(( $(date +%s) - start )) s"
fi
echo "$BIN"
