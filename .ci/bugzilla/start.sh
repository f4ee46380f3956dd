#!/usr/bin/env bash
# start.sh [db|web|all]: start the test Bugzilla's private MariaDB and/or Apache (built by
# .ci/install-bugzilla.sh) unless it already runs; wait until it answers. Root only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
what=${1:-all}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [[ $what == db || $what == all ]]; then
  if alive "$BZ_DB/mysqld.pid" && [ -S "$BZ_DB_SOCK" ]; then
    echo "[bugzilla] mariadbd already running (pid $(cat "$BZ_DB/mysqld.pid"))"
  else
    rm -f "$BZ_DB/mysqld.pid"
    setsid nohup mariadbd --defaults-file="$BZ_DB/my.cnf" >"$BZ_ROOT/mariadbd.out" 2>&1 </dev/null &
    for _ in $(seq 600); do   # up to 60 s on a loaded machine
      if [ -S "$BZ_DB_SOCK" ] && mariadb-admin -S "$BZ_DB_SOCK" -u root ping >/dev/null 2>&1; then
        break
      fi
      sleep 0.1
    done
    mariadb-admin -S "$BZ_DB_SOCK" -u root ping >/dev/null \
      || { echo "[bugzilla] mariadbd did not start; see $BZ_DB/error.log" >&2; exit 1; }
    echo "[bugzilla] mariadbd started (pid $(cat "$BZ_DB/mysqld.pid"))"
  fi
fi

if [[ $what == web || $what == all ]]; then
  if alive "$BZ_APACHE/httpd.pid"; then
    echo "[bugzilla] apache already running (pid $(cat "$BZ_APACHE/httpd.pid"))"
  else
    rm -f "$BZ_APACHE/httpd.pid"
    apache2 -f "$BZ_APACHE/httpd-modperl.conf" -k start
    echo "[bugzilla] apache started"
  fi
  # mod_perl compiles Bugzilla in every child: the first answer can take a while
  for _ in $(seq 1200); do   # up to 120 s
    if curl -fsS -o /dev/null --max-time 10 "$BZ_URL/rest/version"; then
      echo "[bugzilla] $BZ_URL answers"
      exit 0
    fi
    sleep 0.1
  done
  echo "[bugzilla] $BZ_URL does not answer; see $BZ_APACHE/logs/error.log" >&2
  exit 1
fi
