#!/usr/bin/env bash
# Build and start a real Bugzilla 5.2 for the tests in tests/bugzilla/ (test_real_*.py):
# the unmodified upstream source in vendor/bugzilla-5.2.tar.gz (its sha256 is checked),
# Debian 12's Perl modules, a private MariaDB on 127.0.0.1:3307 and Apache 2.4 with mod_perl
# on 127.0.0.1:8090, everything under $BZ_ROOT (.ci/bugzilla/env.sh). See .ci/bugzilla/README.md.
#
# Stock mod_perl setup on purpose: Bugzilla's Apache2::SizeLimit ends each Apache child after
# one answer while that answer says Keep-Alive, so the tests meet the dropped pooled
# connections every real installation shows.
#
# Idempotent: a second run checks the packages, the build stamp and that both servers answer,
# and starts what is stopped (a few seconds). Needs root and Debian's package mirrors.
# Prints nothing secret (the keys in env.sh are throwaway keys of this local instance).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE=$REPO/.ci/bugzilla
. "$HERE/env.sh"
TARBALL=$REPO/vendor/bugzilla-5.2.tar.gz
SHA256=43508bd45ae06573544c482c6e872d3d859e18a578af4a5ce4698cdcc5bf4553
log() { printf '[install-bugzilla] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "install-bugzilla.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi
start=$(date +%s)

# 1. Debian packages (Template-Toolkit is 2.27 in bookworm: patch 0001 lowers the requirement)
PACKAGES=(apache2 libapache2-mod-perl2 mariadb-server mariadb-client libdbd-mysql-perl
  libdbd-mariadb-perl libappconfig-perl libdate-calc-perl libtemplate-perl
  libdatetime-timezone-perl libdatetime-perl libemail-address-xs-perl libemail-sender-perl
  libemail-mime-perl libdbi-perl libdbix-connector-perl libcgi-pm-perl
  libmath-random-isaac-perl libmath-random-isaac-xs-perl libjson-rpc-perl libtest-taint-perl
  libjson-xs-perl liblist-moreutils-perl libmoo-perl libtimedate-perl liburi-perl
  libhtml-scrubber-perl libencode-detect-perl libfile-slurp-perl libxml-twig-perl
  libsoap-lite-perl libdaemon-generic-perl libfile-mimeinfo-perl
  libhtml-formattext-withlinks-perl curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "Debian packages already installed"
else
  log "installing ${#missing[@]} Debian packages (apt, a few minutes the first time)"
  if ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    apt-get update -qq
  fi
  # no service is started by the packages' scripts here: ours run on their own ports
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# 2. the source, checked
echo "$SHA256  $TARBALL" | sha256sum -c --quiet - \
  || { echo "install-bugzilla.sh: $TARBALL does not have the sha256 vendor/README.md gives" >&2
       exit 1; }

# 3. build into $BZ_ROOT unless the same inputs were built there already
stamp=$(cat "$TARBALL" "$HERE"/0001-*.patch "$HERE/env.sh" "$HERE/bz-data.pl" \
          "$REPO/.ci/install-bugzilla.sh" \
        | sha256sum | cut -c1-16)
if [ -f "$BZ_ROOT/.built" ] && [ "$(cat "$BZ_ROOT/.built")" = "$stamp" ]; then
  log "Bugzilla 5.2 already built in $BZ_ROOT"
else
  log "building Bugzilla 5.2 in $BZ_ROOT (about a minute)"
  "$HERE/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$BZ_ROOT"
  mkdir -p "$BZ_SRC" "$BZ_DB" "$BZ_APACHE/logs" "$BZ_APACHE/run"
  chmod 755 "$BZ_ROOT"
  tar -xzf "$TARBALL" -C "$BZ_SRC"
  (cd "$BZ_SRC" && patch -s -p1 < "$HERE/0001-template-toolkit-2.27.patch")

  # a private MariaDB on 127.0.0.1:$BZ_DB_PORT (socket in $BZ_DB)
  chown mysql:mysql "$BZ_DB"
  mariadb-install-db --user=mysql --datadir="$BZ_DB" --auth-root-authentication-method=socket \
    >"$BZ_ROOT/mariadb-install-db.log" 2>&1
  cat > "$BZ_DB/my.cnf" <<CNF
[mysqld]
datadir=$BZ_DB
socket=$BZ_DB_SOCK
port=$BZ_DB_PORT
bind-address=127.0.0.1
pid-file=$BZ_DB/mysqld.pid
log-error=$BZ_DB/error.log
user=mysql
max_allowed_packet=64M
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
CNF
  chown mysql:mysql "$BZ_DB/my.cnf"
  "$HERE/start.sh" db
  mariadb -S "$BZ_DB_SOCK" -u root -e "CREATE DATABASE IF NOT EXISTS bugs CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS 'bugs'@'localhost' IDENTIFIED BY '$BZ_DB_PASS';
    GRANT ALL ON bugs.* TO 'bugs'@'localhost'; FLUSH PRIVILEGES;"

  # checksetup: the first run writes localconfig; the driver must be 'mariadb' (not 'mysql')
  # for MariaDB 10.6+; data/ must exist before the second run
  cd "$BZ_SRC"
  perl checksetup.pl >"$BZ_ROOT/checksetup.log" 2>&1 || true
  sed -i -e "s/^\$webservergroup = .*/\$webservergroup = 'www-data';/" \
         -e "s/^\$db_driver = .*/\$db_driver = 'mariadb';/" \
         -e "s/^\$db_pass = .*/\$db_pass = '$BZ_DB_PASS';/" \
         -e "s|^\$db_sock = .*|\$db_sock = '$BZ_DB_SOCK';|" localconfig
  mkdir -p data
  cat > "$BZ_ROOT/answers" <<ANS
\$answer{'urlbase'} = '$BZ_URL/';
\$answer{'ADMIN_EMAIL'} = '$BZ_ADMIN';
\$answer{'ADMIN_PASSWORD'} = '$BZ_ADMIN_PASS';
\$answer{'ADMIN_REALNAME'} = 'Admin';
\$answer{'NO_PAUSE'} = 1;
\$answer{'mail_delivery_method'} = 'None';
ANS
  perl checksetup.pl "$BZ_ROOT/answers" >>"$BZ_ROOT/checksetup.log" 2>&1 \
    || { tail -20 "$BZ_ROOT/checksetup.log" >&2; exit 1; }
  # users, API keys, products, custom fields, priorities, NEEDINFO, keywords
  perl "$HERE/bz-data.pl" >>"$BZ_ROOT/checksetup.log" 2>&1 \
    || { tail -20 "$BZ_ROOT/checksetup.log" >&2; exit 1; }
  perl checksetup.pl "$BZ_ROOT/answers" >>"$BZ_ROOT/checksetup.log" 2>&1   # file permissions
  cd "$REPO"

  # Apache: its own config, mod_perl, 127.0.0.1:$BZ_PORT only, KeepAlive as shipped (on)
  cat > "$BZ_APACHE/httpd-modperl.conf" <<CONF
ServerRoot /etc/apache2
DefaultRuntimeDir $BZ_APACHE/run
PidFile $BZ_APACHE/httpd.pid
ErrorLog $BZ_APACHE/logs/error.log
LogLevel warn
Listen 127.0.0.1:$BZ_PORT
ServerName 127.0.0.1
User www-data
Group www-data
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
LoadModule access_compat_module /usr/lib/apache2/modules/mod_access_compat.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so
LoadModule perl_module /usr/lib/apache2/modules/mod_perl.so
LoadModule env_module /usr/lib/apache2/modules/mod_env.so
LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule expires_module /usr/lib/apache2/modules/mod_expires.so
TypesConfig /etc/mime.types
LogFormat "%h %t \"%r\" %>s %b %D %{pid}P" timed
CustomLog $BZ_APACHE/logs/access.log timed
StartServers 4
MaxRequestWorkers 16
DocumentRoot $BZ_SRC
PerlSwitches -w -T
PerlConfigRequire $BZ_SRC/mod_perl.pl
<Directory $BZ_SRC>
  Require all granted
</Directory>
CONF
  echo "$stamp" > "$BZ_ROOT/.built"
fi

# 4. both servers up (a fresh CI machine, or a machine whose processes ended)
"$HERE/start.sh" all
log "Bugzilla $(curl -fsS "$BZ_URL/rest/version" | sed 's/.*"version":"\([^"]*\)".*/\1/') at $BZ_URL; done in $(( $(date +%s) - start )) s"
