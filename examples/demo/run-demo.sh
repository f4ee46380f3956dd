#!/usr/bin/env bash
# tracker-bridge demo: a local Redmine 5, a clinic project with eight tickets modelled on the
# source handbooks' cases (reported by a customer, Priya Shah; answered by a support agent,
# Sam Okafor), one `tracker-bridge sync --once`, and the result in the terminal and in
# Redmine's web page.
#
#   make demo                            # from the repository root: the same, after `make install`
#   examples/demo/run-demo.sh            # from a fresh Debian/Ubuntu machine, as root or with sudo
#   examples/demo/run-demo.sh --reset    # throw the demo's project away and seed it again
#
# Steps (each is safe to repeat): install tracker-bridge into the repository's .venv if it is
# not there (`make install`), install Redmine (.ci/install-redmine.sh, ~35 s the first time;
# this script is the only place the demo does it), start Redmine (~4 s), set up the demo's
# people, project and fields and seed the tickets, check the setup, sync once, print the
# verdicts, the KB-ready note and the URL to open. Redmine keeps running afterwards on
# 127.0.0.1:$REDMINE_PORT (3000); stop it from the repository root with
#   .venv/bin/python -m tests.redmine.server stop        (sudo first unless root)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PORT="${REDMINE_PORT:-3000}"
RESET=""
[ "${1:-}" = "--reset" ] && RESET="--reset"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

t0=$(date +%s)
step "1/6 tracker-bridge (in $REPO/.venv)"
PY="$REPO/.venv/bin/python"
if ! [ -x "$PY" ] || ! "$PY" -c "import tracker_bridge.plugins.redmine" 2>/dev/null \
   || ! [ -x "$REPO/.venv/bin/tracker-bridge" ]; then
    make -C "$REPO" install
fi
TB="$REPO/.venv/bin/tracker-bridge"
"$TB" plugins

step "2/6 Redmine 5 (Debian package) on 127.0.0.1:$PORT"
$SUDO bash "$REPO/.ci/install-redmine.sh"
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

step "3/6 the demo's people, project, custom fields and tickets"
$SUDO env REDMINE_PORT="$PORT" "$PY" "$HERE/demo.py" seed $RESET

step "4/6 tracker-bridge check"
"$TB" check --config "$CONFIG"

step "5/6 tracker-bridge sync --once"
set +e
"$TB" sync --once --config "$CONFIG"
rc=$?
set -e

step "6/6 the verdicts"
"$PY" "$HERE/demo.py" show --config "$CONFIG"

echo
echo "Open the SLA board in Redmine (no login needed; admin / admin to edit): the tickets of"
echo "Priya Shah (customer) with their SLA state, response and resolution due, and SLA labels:"
echo "  http://127.0.0.1:$PORT/projects/clinic-demo/issues"
echo "Then change a ticket (e.g. set one to Feedback, or add your own label next to the sla- ones)"
echo "and run:  $TB sync --once --config $CONFIG"
echo "Redmine keeps running on 127.0.0.1:$PORT; stop it with:"
echo "  cd $REPO && ${SUDO:+sudo }env REDMINE_PORT=$PORT .venv/bin/python -m tests.redmine.server stop"
echo "(demo ran in $(( $(date +%s) - t0 )) s)"
exit $rc
