#!/usr/bin/env bash
# tracker-bridge demo: a local Redmine 5, a clinic project with eight tickets modelled on the
# source handbooks' cases, one `tracker-bridge sync --once`, and the result in the terminal
# and in Redmine's web page.
#
#   examples/demo/run-demo.sh            # from a fresh Debian/Ubuntu machine, as root or with sudo
#   examples/demo/run-demo.sh --reset    # throw the demo tickets away and seed them again
#
# Steps (each is safe to repeat): install Redmine (.ci/install-redmine.sh, ~35 s the first
# time), install tracker-bridge if missing, start Redmine (~4 s), seed the project, check the
# setup, sync once, print the verdicts and the URL to open. Redmine keeps running afterwards;
# stop it with `python3 -m tests.redmine.server stop` (from the repository root).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"
PORT="${REDMINE_PORT:-3000}"
RESET=""
[ "${1:-}" = "--reset" ] && RESET="--reset"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

t0=$(date +%s)
step "1/6 Redmine 5 (Debian package)"
$SUDO bash "$REPO/.ci/install-redmine.sh"

step "2/6 tracker-bridge"
if ! "$PY" -c "import tracker_bridge.plugins.redmine" 2>/dev/null || ! command -v tracker-bridge >/dev/null; then
    "$PY" -m pip install -q -e "$REPO"
fi
tracker-bridge plugins

step "3/6 start Redmine on 127.0.0.1:$PORT"
cd "$REPO"
# ($SUDO: the Redmine files belong to root)
$SUDO env REDMINE_PORT="$PORT" "$PY" -m tests.redmine.server start
umask 077
$SUDO env REDMINE_PORT="$PORT" "$PY" -m tests.redmine.server apikey > "$HERE/redmine-api-key"
umask 022

CONFIG="$HERE/tracker-bridge.yaml"
if [ "$PORT" != "3000" ]; then
    sed "s#http://127.0.0.1:3000#http://127.0.0.1:$PORT#" "$CONFIG" > "$HERE/tracker-bridge.local.yaml"
    CONFIG="$HERE/tracker-bridge.local.yaml"
fi

step "4/6 demo project, custom fields and tickets"
$SUDO env REDMINE_PORT="$PORT" "$PY" "$HERE/demo.py" seed $RESET
if [ -n "$RESET" ]; then rm -f "$HERE"/demo-state.sqlite*; fi

step "5/6 tracker-bridge check, then one sync"
tracker-bridge check --config "$CONFIG"
set +e
tracker-bridge sync --once --config "$CONFIG"
rc=$?
set -e

step "6/6 the verdicts"
"$PY" "$HERE/demo.py" show --config "$CONFIG"

cf_ids=$("$PY" - "$PORT" "$HERE/redmine-api-key" <<'PY'
import json, sys, urllib.request
port, key = sys.argv[1], open(sys.argv[2]).read().strip()
req = urllib.request.Request(f"http://127.0.0.1:{port}/custom_fields.json",
                             headers={"X-Redmine-API-Key": key})
fields = {f["name"]: f["id"] for f in json.load(urllib.request.urlopen(req))["custom_fields"]}
print(" ".join(str(fields[n]) for n in ("SLA labels", "SLA response due", "SLA resolution due",
                                        "Support plan")))
PY
)
cols="c[]=tracker&c[]=status&c[]=priority&c[]=subject"
for id in $cf_ids; do cols="$cols&c[]=cf_$id"; done
echo
echo "Open the SLA state in Redmine (no login needed; admin / admin to edit):"
echo "  http://127.0.0.1:$PORT/projects/clinic-demo/issues?set_filter=1&status_id=*&sort=id&$cols"
echo "Then change a ticket (e.g. set one to Feedback, or add your own label next to the sla- ones)"
echo "and run:  tracker-bridge sync --once --config $CONFIG"
echo "(demo ran in $(( $(date +%s) - t0 )) s)"
exit $rc
