# Paths, ports and throwaway local test credentials of the test Bugzilla (source this file).
# The server listens on 127.0.0.1 only; the keys below open nothing but that instance.
export BZ_ROOT=${BZ_ROOT:-/var/tmp/tracker-bridge-bugzilla}   # reachable by mysql and www-data
export BZ_SRC=$BZ_ROOT/src            # Bugzilla 5.2 (vendor/bugzilla-5.2.tar.gz, unpacked)
export BZ_DB=$BZ_ROOT/db              # the private MariaDB's datadir
export BZ_APACHE=$BZ_ROOT/apache      # the private Apache's config, logs, pid file
export BZ_DB_PORT=${BZ_DB_PORT:-3307}
export BZ_DB_SOCK=$BZ_DB/mysqld.sock
export BZ_PORT=${BZ_PORT:-8090}
export BZ_URL=http://127.0.0.1:$BZ_PORT
export BZ_DB_PASS=bugs-local-pw
export BZ_ADMIN=admin@example.org
export BZ_ADMIN_PASS=admin-local-pw-1
export BZ_ADMIN_KEY=AdminKeyLocalOnly0123456789abcdefABCDEF
export BZ_BOT=sla-bot@example.org
export BZ_BOT_PASS=bot-local-pw-12
export BZ_BOT_KEY=TestKeyLocalOnly0123456789abcdefABCDEFGH
export BZ_NURSE=nurse@example.org
export BZ_NURSE_KEY=NurseKeyLocalOnly0123456789abcdefABCDEF
