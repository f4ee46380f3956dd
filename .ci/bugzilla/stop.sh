#!/usr/bin/env bash
# stop.sh: stop the Apache and the MariaDB that start.sh started (by their pid files) and wait
# until both are gone.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"

stop_pid_file() {
  local file=$1 name=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo "[bugzilla] $name stopped"
  fi
  rm -f "$file"
}
stop_pid_file "$BZ_APACHE/httpd.pid" apache
stop_pid_file "$BZ_DB/mysqld.pid" mariadbd
