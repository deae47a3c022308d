# test/lib.sh — shared set-up for make test / make demo / make bench.
#
# Installs the Debian packages elfsofa needs, builds elfsofa, and runs a
# throwaway PostgreSQL server of our own (own port, own socket directory, own
# data directory).  Never touches any other server.
#
# Settings (environment):
#   ES_PORT   port of our server               (default set by the caller)
#   ES_TMP    directory for data, socket, logs (default /tmp/elfsofa-<what>-<port>)
#   ES_PRIVATE_TREE=1  install elfsofa into a private copy of the PostgreSQL
#             tree under $ES_TMP instead of the system one (make test does this,
#             so parallel work trees and the system install never collide).

set -o pipefail

ES_PGVER=${ES_PGVER:-15}
ES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ES_ROOT
ES_SYS_BINDIR=/usr/lib/postgresql/$ES_PGVER/bin

es_say() { printf '== %s\n' "$*" >&2; }
es_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

es_sudo() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else es_die "need root to run: $*"; fi
}

# Installs whatever of the required packages is missing.
es_install_packages() {
    local pkgs="postgresql-$ES_PGVER postgresql-server-dev-$ES_PGVER postgresql-$ES_PGVER-cron postgresql-$ES_PGVER-pgtap pgtap faketime pgbouncer"
    local missing=""
    for p in $pkgs make gcc; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    es_say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Do not let the package create and start a cluster of its own on 5432.
    if [ ! -e /etc/postgresql-common/createcluster.d/elfsofa.conf ] && [ "$(id -u)" = 0 ]; then
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/elfsofa.conf
    fi
    es_sudo apt-get install -y -q $missing >/dev/null 2>&1 || {
        es_sudo apt-get update -q >/dev/null 2>&1
        es_sudo apt-get install -y -q $missing >/dev/null || es_die "apt-get install failed"
    }
}

# The user the server runs as: postgres when we are root (PostgreSQL refuses root).
es_server_user() {
    if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

es_as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Builds elfsofa and installs it; sets ES_BINDIR to the binaries to run.
es_build_install() {
    local pgc=/usr/lib/postgresql/$ES_PGVER/bin/pg_config
    make -C "$ES_ROOT" -s PG_CONFIG=$pgc >&2 || es_die "build failed"
    if [ "${ES_PRIVATE_TREE:-0}" = 1 ]; then
        local tree=$ES_TMP/pg
        if [ ! -x "$tree/usr/lib/postgresql/$ES_PGVER/bin/postgres" ]; then
            rm -rf "$tree"
            mkdir -p "$tree/usr/lib/postgresql" "$tree/usr/share/postgresql" "$tree/usr/include"
            cp -a /usr/lib/postgresql/$ES_PGVER "$tree/usr/lib/postgresql/"
            cp -a /usr/share/postgresql/$ES_PGVER "$tree/usr/share/postgresql/"
            cp -a /usr/include/postgresql "$tree/usr/include/"
        fi
        # PostgreSQL finds share/ and lib/ relative to its binaries, so this tree is self-contained.
        ES_BINDIR=$tree/usr/lib/postgresql/$ES_PGVER/bin
        make -C "$ES_ROOT" -s install PG_CONFIG="$ES_BINDIR/pg_config" >/dev/null || es_die "install failed"
    else
        ES_BINDIR=$ES_SYS_BINDIR
        if [ "$(id -u)" = 0 ] || [ -w "$("$pgc" --pkglibdir)" ]; then
            make -C "$ES_ROOT" -s install PG_CONFIG=$pgc >/dev/null || es_die "install failed"
        else
            es_sudo make -C "$ES_ROOT" -s install PG_CONFIG=$pgc >/dev/null || es_die "install failed"
        fi
    fi
    ES_PG_CONFIG=$ES_BINDIR/pg_config
    ES_PGXS_BIN=$("$ES_PG_CONFIG" --pkglibdir)/pgxs/src/test
    export ES_BINDIR ES_PG_CONFIG ES_PGXS_BIN
}

# Client environment for our server.
es_client_env() {
    export PGHOST=$ES_TMP/sock PGPORT=$ES_PORT PGUSER=$(es_server_user) PGDATABASE=postgres
    export PATH=$ES_BINDIR:$PATH
}

# initdb (if needed) and start our server; extra postgresql.conf lines on stdin.
es_start_server() {
    local extra_conf
    extra_conf=$(cat)
    mkdir -p "$ES_TMP"
    chmod 755 "$ES_TMP"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$ES_TMP"; fi
    es_as_server_user mkdir -p "$ES_TMP/sock" "$ES_TMP/log"
    if [ ! -f "$ES_TMP/data/PG_VERSION" ]; then
        es_as_server_user "$ES_BINDIR/initdb" -D "$ES_TMP/data" -U "$(es_server_user)" \
            --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$ES_TMP/log/initdb.log" 2>&1 ||
            { cat "$ES_TMP/log/initdb.log" >&2; es_die "initdb failed"; }
        es_as_server_user tee -a "$ES_TMP/data/postgresql.conf" >/dev/null <<EOF
# --- elfsofa throwaway server ---
port = $ES_PORT
listen_addresses = ''
unix_socket_directories = '$ES_TMP/sock'
shared_preload_libraries = 'pg_cron,elfsofa'
cron.database_name = 'postgres'
cron.use_background_workers = on
cron.host = '$ES_TMP/sock'
max_connections = 100
max_worker_processes = 16
max_prepared_transactions = 10
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
timezone = 'Asia/Bangkok'
log_line_prefix = '%m [%p] %d '
$extra_conf
EOF
    fi
    es_client_env
    if ! "$ES_BINDIR/pg_isready" -q -h "$ES_TMP/sock" -p "$ES_PORT"; then
        es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/log/server.log" -w -t 60 start >/dev/null ||
            { tail -20 "$ES_TMP/log/server.log" >&2; es_die "server did not start"; }
    fi
}

# A fresh server every run: stop what an earlier run left in $ES_TMP, then start clean.
es_fresh_tmp() {
    if [ -d "$ES_TMP" ]; then
        ES_BINDIR=$ES_TMP/pg/usr/lib/postgresql/$ES_PGVER/bin
        [ -x "$ES_BINDIR/pg_ctl" ] || ES_BINDIR=$ES_SYS_BINDIR
        es_stop_server
        rm -rf "$ES_TMP"
    fi
    mkdir -p "$ES_TMP"
}

es_stop_server() {
    if [ -f "$ES_TMP/data/postmaster.pid" ]; then
        es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    fi
}

# --- a moved clock (test/calendar.sh, test/scripts/21_orders_year_turn.sh) ---
ES_FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
ES_FAKETIME_SHIM_DIR=/tmp/elfsofa-faketime-shim

# Builds test/calendar_waits.c, which goes ahead of libfaketime (installed by
# es_install_packages); sets ES_FAKETIME_PRELOAD, the value for LD_PRELOAD.
es_faketime_prepare() {
    [ -f "$ES_FAKETIME_LIB" ] || es_install_packages
    mkdir -p "$ES_FAKETIME_SHIM_DIR"
    if [ ! -f "$ES_FAKETIME_SHIM_DIR/calendar_waits.so" ] ||
       [ "$ES_ROOT/test/calendar_waits.c" -nt "$ES_FAKETIME_SHIM_DIR/calendar_waits.so" ]; then
        env -u LD_PRELOAD gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$ES_FAKETIME_SHIM_DIR/calendar_waits.so.$$" \
            "$ES_ROOT/test/calendar_waits.c" || es_die "could not build test/calendar_waits.c"
        mv "$ES_FAKETIME_SHIM_DIR/calendar_waits.so.$$" "$ES_FAKETIME_SHIM_DIR/calendar_waits.so"
    fi
    chmod 755 "$ES_FAKETIME_SHIM_DIR" "$ES_FAKETIME_SHIM_DIR/calendar_waits.so"
    ES_FAKETIME_PRELOAD="$ES_FAKETIME_SHIM_DIR/calendar_waits.so $ES_FAKETIME_LIB"
    unset FAKETIME_SHARED    # no shared state (see test/calendar_waits.c)
}

# The libfaketime offset (FAKETIME="+<it>") that puts the clock at $1, a time in
# Asia/Bangkok; computed from the real clock even inside a moved one.
es_faketime_offset() {
    echo $(( $(TZ=Asia/Bangkok env -u LD_PRELOAD date -d "$1" +%s) - $(env -u LD_PRELOAD date +%s) ))
}
