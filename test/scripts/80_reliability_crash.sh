#!/usr/bin/env bash
# 80_reliability_crash.sh — SIGKILL the server mid-load, restart, and prove the
# shop is consistent: all-or-nothing orders (lines, payment, ledger, audit,
# event, idempotency key), ledger sums = stock levels, no negative stock, and
# every order a client saw acknowledged survived.  Runs its own server
# (make test's port + 3) so make test's server is never killed.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

CYCLES=${REL_CRASH_CYCLES:-3}
rel_fresh_server $REL_CRASH_PORT /tmp/elfsofa-crash-$REL_CRASH_PORT <<'CONF' || { tap_ok 1 "crash server started"; tap_done; exit 1; }
shared_buffers = '64MB'
fsync = on
synchronous_commit = on
max_connections = 40
CONF
trap 'es_stop_server' EXIT
W=$ES_TMP/work
mkdir -p "$W"
t0=$(rel_now)

rel_shop shop
tap_ok $? "shop loaded on the crash server"
rel_order_script "$W/order.sql"

# Places orders one by one with unique keys and records each acknowledged one.
ack_client() {
    local cycle=$1 n=0 id
    while :; do
        n=$((n + 1))
        id=$(psql -X -A -t -q -d shop -c "SELECT rel.place(($n % 200) + 1, ($n % 20) + 1, 1, (($n * 7) % 20) + 1, 'ack-$cycle-$n')" 2>/dev/null) || continue
        [ -n "$id" ] && echo "ack-$cycle-$n|$id" >>"$W/acked-$cycle"
    done
}

for cycle in $(seq 1 "$CYCLES"); do
    before=$(q -d shop -c "SELECT count(*) FROM elfsofa.orders")
    : >"$W/acked-$cycle"
    pgbench -n -c 8 -j 2 -T 60 -f "$W/order.sql" shop >"$W/pgbench-$cycle.log" 2>&1 &
    pgb=$!
    ack_client "$cycle" &
    ack=$!
    sleep $((3 + RANDOM % 4))
    mid=$(q -d shop -c "SELECT count(*) FROM elfsofa.orders")
    pm=$(rel_pm_pid)
    kids=$(pgrep -P "$pm" | tr '\n' ' ')
    if [ $((cycle % 2)) -eq 1 ]; then
        how="postmaster only"
        kill -9 "$pm"
    else
        how="postmaster and every backend at once (power cut)"
        kill -9 "$pm" $kids 2>/dev/null
    fi
    # Orphaned backends notice the dead postmaster and exit; force the stragglers
    # (every process of this server, not only the children listed above).
    rel_wait_server_gone "$pm"
    tap_ok $? "cycle $cycle: no process of the killed server is left"
    kill "$ack" 2>/dev/null; wait "$ack" 2>/dev/null
    wait "$pgb" 2>/dev/null
    tap_ok $([ "$mid" -gt "$before" ]; echo $?) "cycle $cycle: orders were being placed when killed ($((mid - before)) in flight window, $how)"

    logsize=$(stat -c %s "$ES_TMP/log/server.log")
    (es_start_server </dev/null) 2>"$W/start-$cycle.err"
    q -d shop -c "SELECT 1" >/dev/null
    up=$?
    tap_ok $up "cycle $cycle: server restarted after SIGKILL"
    if [ $up -ne 0 ]; then
        sed 's/^/# /' "$W/start-$cycle.err" | tail -20
        tap_done
        exit 1
    fi
    tail -c +$((logsize + 1)) "$ES_TMP/log/server.log" | grep "database system was interrupted\|database system was not properly shut down" >/dev/null
    tap_ok $? "cycle $cycle: the restart ran crash recovery"

    rel_check_invariants shop "cycle $cycle"

    # Durability: every order acknowledged to a client is there, with its key.
    nack=$(wc -l <"$W/acked-$cycle")
    if [ "$nack" -gt 0 ]; then
        psql -X -q -d shop -c "CREATE TEMP TABLE a (k text, id bigint)" \
            -c "\\copy a FROM '$W/acked-$cycle' WITH (DELIMITER '|')" \
            -c "SELECT count(*) FROM a WHERE NOT EXISTS (SELECT 1 FROM elfsofa.orders o JOIN elfsofa.idempotency_keys k ON k.order_id = o.id WHERE o.id = a.id AND k.key = a.k)" \
            -A -t >"$W/lost-$cycle" 2>&1
        tap_is "$(tail -1 "$W/lost-$cycle")" 0 "cycle $cycle: all $nack acknowledged orders survived the crash"
    else
        tap_ok 1 "cycle $cycle: the acknowledging client placed at least one order"
    fi
done

# The recovered shop is undamaged on disk and keeps working.
psql -X -q -d shop -c "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null 2>&1
timeout 120 pg_amcheck -d shop --heapallindexed >"$W/amcheck.log" 2>&1
tap_ok $? "pg_amcheck finds no corruption in tables or indexes"
[ -s "$W/amcheck.log" ] && sed 's/^/# /' "$W/amcheck.log" | head -10
id=$(q -d shop -c "SELECT rel.place(1, 1, 1, 2, 'after-crash')")
tap_ok $([ -n "$id" ]; echo $?) "the recovered shop takes an order (id $id)"
rel_check_invariants shop "final"
tap_is "$(rel_crash_lines | grep -c 'terminated by signal [^9]')" 0 "no backend died of a signal other than our SIGKILL"
echo "# crash suite took $(rel_since "$t0") s"

es_stop_server
trap - EXIT
tap_done && rm -rf "$ES_TMP/data"
