#!/usr/bin/env bash
# Install Debian's Redmine 5 (SQLite) for the real-Redmine tests and the demo.
#
# Idempotent: every step checks before it acts, so running it twice is cheap (~3 s for the
# rails-runner settings step, nothing else). Needs root and access to the Debian mirrors.
# Prints nothing secret: the admin API key is read by tests/redmine/server.py when needed.
set -euo pipefail

REDMINE_DIR=/usr/share/redmine
log() { printf '[install-redmine] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install-redmine.sh: must run as root (it installs Debian packages)" >&2
    exit 1
fi

start=$(date +%s)
if dpkg-query -W -f='${Status}' redmine 2>/dev/null | grep -q 'install ok installed' \
   && dpkg-query -W -f='${Status}' redmine-sqlite 2>/dev/null | grep -q 'install ok installed'; then
    log "redmine and redmine-sqlite already installed"
else
    log "installing redmine + redmine-sqlite (apt, ~25 s)"
    # An apt cache is only refreshed when the package is not known yet.
    if ! apt-cache show redmine >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # dbconfig-common must pick SQLite without asking.
    echo "redmine redmine/instances/default/database-type select sqlite3" | debconf-set-selections
    echo "redmine redmine/instances/default/dbconfig-install boolean true" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        redmine redmine-sqlite >/dev/null
fi

# The package ships no application server in its Gemfile: add webrick.
if ! grep -qs "gem 'webrick'" "$REDMINE_DIR/Gemfile.local"; then
    log "adding webrick to Gemfile.local"
    echo "gem 'webrick'" > "$REDMINE_DIR/Gemfile.local"
    rm -f /var/lib/redmine/Gemfile.lock "$REDMINE_DIR/Gemfile.lock"
fi

# WEBrick + keep-alive + Nagle = ~40 ms of delayed-ACK wait on every API request; a small
# initializer of our own sets TCP_NODELAY on accepted sockets (halves the test suite's time).
NODELAY="$REDMINE_DIR/config/initializers/99-tracker-bridge-webrick-nodelay.rb"
nodelay_tmp=$(mktemp)
cat > "$nodelay_tmp" <<'RUBY'
# Installed by tracker-bridge's .ci/install-redmine.sh (test/demo instances only).
# WEBrick writes a response's head and body separately; with Nagle on, the body waits for
# the client's delayed ACK (~40 ms on Linux) on every keep-alive request. TCP_NODELAY on
# accepted sockets makes a request take its real time (about 2x faster for API clients).
begin
  require "webrick"
  require "socket"
  module TrackerBridgeWebrickNoDelay
    private

    def accept_client(svr)
      sock = super
      if sock.respond_to?(:setsockopt)
        sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1) rescue nil
      end
      sock
    end
  end
  WEBrick::GenericServer.prepend(TrackerBridgeWebrickNoDelay)
rescue LoadError
  # no webrick in the bundle: another app server, nothing to do
end
RUBY
if ! cmp -s "$nodelay_tmp" "$NODELAY"; then
    log "installing $NODELAY"
    install -m 0644 "$nodelay_tmp" "$NODELAY"
fi
rm -f "$nodelay_tmp"

# REST API on, admin usable without the forced password change.
# One rails-runner call (~3 s); it prints only "ok".
log "enabling the REST API and unlocking the admin account"
cd "$REDMINE_DIR"
RAILS_ENV=production ruby bin/rails runner '
  Setting.rest_api_enabled = "1" unless Setting.rest_api_enabled?
  u = User.find_by_login("admin")
  if u.must_change_passwd
    u.must_change_passwd = false
    u.save!
  end
  u.api_key  # creates the key if missing; never printed here
  puts "ok"' 2>/dev/null | sed 's/^/[install-redmine] rails runner: /'

log "done in $(( $(date +%s) - start )) s"
