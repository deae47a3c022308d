# test/reliability/lib.sh — shared helpers for the reliability scripts
# (test/scripts/8x_*.sh): a private throwaway server per script, the test shop,
# the order workload and the invariant checks.  Sourced after test/tap.sh.

REL_DIR=$ES_ROOT/test/reliability
# Our extra servers take ports next to make test's own (ES_PORT): +2 for the
# replication subscriber, +3 for the crash server, so work trees and CI runs
# that run make test at the same time never share (and kill) one.
REL_BASE_PORT=${ES_PORT:-55432}
REL_REPL_PORT=$((REL_BASE_PORT + 2))
REL_CRASH_PORT=$((REL_BASE_PORT + 3))

# rel_use_server <port> <tmpdir>: point ES_PORT/ES_TMP (and the client
# environment) at a server of our own, reusing the PostgreSQL tree make test
# installed elfsofa into (ES_BINDIR from run.sh), or building one when run alone.
rel_use_server() {
    ES_PORT=$1
    ES_TMP=$2
    export ES_PORT ES_TMP
    if [ -z "${ES_BINDIR:-}" ] || [ ! -x "$ES_BINDIR/postgres" ]; then
        ES_PRIVATE_TREE=1 es_build_install
    fi
    es_client_env
}

# rel_fresh_server <port> <tmpdir>: stop and wipe what an earlier run left,
# then initdb and start; extra postgresql.conf lines on stdin.
rel_fresh_server() {
    local conf
    conf=$(cat)
    rel_use_server "$1" "$2"
    es_stop_server
    rm -rf "$ES_TMP/data" "$ES_TMP/log" "$ES_TMP/sock"
    es_start_server <<<"$conf"
}

# rel_own_server <port offset> <name> <what>: a script's server of its own,
# fresh, on make test's port + offset under $ES_TMP/<name> (extra
# postgresql.conf lines on stdin), stopped when the script exits; when it does
# not start, one "not ok" line and the script ends.
rel_own_server() {
    rm -rf "${ES_TMP:?}/$2"
    rel_fresh_server $((ES_PORT + $1)) "$ES_TMP/$2" || { echo "not ok 1 - the $3 server started"; exit 1; }
    trap es_stop_server EXIT
}

# The postmaster's pid (first line of postmaster.pid), empty when none.
rel_pm_pid() { head -1 "$ES_TMP/data/postmaster.pid" 2>/dev/null; }

# rel_server_pids: every live process of this server (postmaster, backends,
# background workers), found by its working directory, which PostgreSQL sets
# to the data directory.  A list taken from the postmaster's children misses
# a backend forked a moment later, and such a straggler keeps the old shared
# memory attached, so the next start refuses to run.
rel_server_pids() {
    local d p
    d=$(readlink -f "$ES_TMP/data")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" = "$d" ] && echo "${p#/proc/}"
    done
}

# rel_wait_server_gone <postmaster pid>: after a SIGKILL, give orphaned
# processes time to see the dead postmaster and exit, kill what is left, and
# wait until the dead postmaster has been reaped too: until then its pid still
# answers kill -0, and a new postmaster that finds it in postmaster.pid refuses
# to start ("lock file already exists").  Returns 1 if anything survives 30 s.
rel_wait_server_gone() {
    local pm=$1 left i
    for i in $(seq 1 150); do
        left=$(rel_server_pids)
        [ -z "$left" ] && [ ! -e "/proc/$pm" ] && return 0
        [ "$i" -ge 25 ] && [ -n "$left" ] && kill -9 $left 2>/dev/null
        sleep 0.2
    done
    return 1
}

# Server log lines that mean a backend crashed or the server had to reset.
rel_crash_lines() {
    grep -hE 'terminated by signal|server process .* (was terminated|exited with exit code)|terminating any other active server processes|all server processes terminated' \
        "$ES_TMP"/log/server*.log 2>/dev/null
}

# rel_shop <db>: a fresh database holding the test shop (see shop.sql).
rel_shop() {
    local db=$1
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || return 1
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$REL_DIR/shop.sql" >/dev/null
}

# rel_invariants <db>: prints "name|violations" lines (0 = holds); see invariants.sql.
rel_invariants() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -f "$REL_DIR/invariants.sql"
}

# rel_check_invariants <db> <label> [skip-regex]: one TAP line per invariant
# (those whose name matches skip-regex are left out).
rel_check_invariants() {
    local db=$1 label=$2 skip=${3:-} out name n
    out=$(rel_invariants "$db" 2>&1)
    if [ $? -ne 0 ] || [ -z "$out" ]; then
        tap_ok 1 "$label: invariant query ran"; echo "$out" | sed 's/^/# /' | head -10
        return
    fi
    while IFS='|' read -r name n; do
        [ -z "$name" ] && continue
        [ -n "$skip" ] && [[ $name =~ $skip ]] && continue
        tap_is "$n" 0 "$label: $name"
    done <<<"$out"
}

# Writes the pgbench script placing one order per transaction.
rel_order_script() {
    cat >"$1" <<'SQL'
\set c random(1, 200)
\set p random(1, 20)
\set q random(1, 3)
\set p2 random(1, 20)
SELECT rel.place(:c, :p, :q, :p2, 'pgb-' || :client_id || '-' || md5(random()::text));
SQL
}

# Seconds since the epoch with fractions, for timings in the TAP comments.
rel_now() { date +%s.%N; }
rel_since() { awk -v a="$1" -v b="$(rel_now)" 'BEGIN { printf "%.1f", b - a }'; }
