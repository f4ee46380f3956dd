#!/usr/bin/env bash
# Make Debian's PostgreSQL server binaries available for the PostgreSQL state-store tests
# (tests/pg/server.py starts a PRIVATE cluster of its own: initdb into a temporary folder,
# pg_ctl on a free port on 127.0.0.1; nothing here starts or touches a system cluster).
#
# Idempotent: when initdb is already there it only prints its folder (well under a second).
# Installing needs root and apt (Debian's `postgresql` package). The last line printed is the
# folder holding initdb and pg_ctl (tests/pg/server.py finds it itself, or through TB_PG_BIN).
set -euo pipefail
log() { printf '[install-postgresql] %s\n' "$*" >&2; }

find_bin() {
    # the newest installed major version
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r d; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
    done | tail -n 1
}

bin=$(find_bin)
if [ -z "$bin" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-postgresql.sh: PostgreSQL is not installed (as root: apt-get install postgresql)" >&2
        exit 1
    fi
    log "installing Debian's postgresql"
    apt-cache show postgresql >/dev/null 2>&1 || apt-get update -qq
    # policy-rc.d 101: do not start the package's own cluster (the tests run a private one)
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null
    bin=$(find_bin)
    [ -n "$bin" ] || { echo "install-postgresql.sh: initdb not found after installing" >&2; exit 1; }
fi
# initdb refuses to run as root: the tests run it as this user
id postgres >/dev/null 2>&1 || log "warning: no postgres user (the tests need it when run as root)"
log "$("$bin/pg_ctl" --version) in $bin"
echo "$bin"
