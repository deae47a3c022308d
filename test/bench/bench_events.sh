#!/usr/bin/env bash
# bench_events — what change events cost and how fast they arrive, in a database
# not named postgres (elfsofa_bench_events), served by the background publisher.
#  1. order throughput (8 clients, process_order): events off vs on (elfsofa.emit_events),
#     interleaved rounds; tps and CPU per transaction, ratios on/off.  Every run starts
#     vacuumed, analyzed and checkpointed, after a short warm-up.
#  2. commit -> subscriber latency at a steady 500 tx/s (pgbench -R 500), measured by
#     elfsofa-listen --timing (delivery time minus the event's created_at): p50/p99,
#     quiet and then with an unrelated transaction (BEGIN; INSERT into another table)
#     left idle for the whole run, in the same bench run; ratio idle/quiet.
#     --timing reads created_at, so it takes every event through events_since.
#  3. catch-up: elfsofa-listen reading 100,000 backlog events (EVENTS_BACKLOG) through events_since.
# Uses process_order when the orders area has landed, else a stand-in order transaction.
# About 100 s with the default BENCH_SECONDS=10 (EVENTS_ROUNDS=2).
set -u
cd "$(dirname "$0")/../.."
source test/lib.sh
set +o pipefail
SECS=${BENCH_SECONDS:-10}
T_START=$(date +%s)
OUT=test/bench/out
mkdir -p "$OUT"
LISTEN=$ES_BINDIR/elfsofa-listen
DB=elfsofa_bench_events
psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f test/bench/events_setup.sql >/dev/null || exit 1
psql -X -q -d $DB -c "CREATE TABLE public.bench_other (n int)" >/dev/null

restart_server() {
    es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/log/server.log" -m fast -w -t 60 restart >/dev/null ||
        es_die "the bench server did not restart"
}
# Until a publisher runs in every database by itself, elfsofa.database names the
# one it serves: this bench's, for the bench, then back to the default.
OLD_DATABASE=$(psql -X -A -t -c "SELECT setting FROM pg_settings WHERE name = 'elfsofa.database'")
RESET_DATABASE=""
finish() {
    if [ -n "$RESET_DATABASE" ]; then
        psql -X -q -c "ALTER SYSTEM RESET elfsofa.database" >/dev/null
        restart_server
    fi
    psql -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null
}
trap finish EXIT
if [ -n "$OLD_DATABASE" ] && [ "$OLD_DATABASE" != $DB ]; then
    psql -X -q -c "ALTER SYSTEM SET elfsofa.database = '$DB'" >/dev/null
    RESET_DATABASE=1
    restart_server
fi
MODE=""
for _ in $(seq 1 50); do   # the publisher connects a moment after the start
    MODE=$(psql -X -A -t -d $DB -c "SELECT elfsofa.publisher_status()->>'mode'")
    [ "$MODE" = worker ] && [ -n "$(psql -X -A -t -d $DB -c "SELECT elfsofa.publisher_status()->>'worker_pid'")" ] && break
    sleep 0.1
done

if [ "$(psql -X -A -t -d $DB -c "SELECT to_regproc('elfsofa.process_order') IS NOT NULL")" = t ]; then
    WORKLOAD="process_order"
    cust_for() { psql -X -A -t -d "$1" -c "SELECT id FROM elfsofa.customers WHERE email = 'bench@example.co.th'"; }
    script() { echo "-f test/bench/events_order.sql -D cust=$(cust_for "$1")"; }
else
    WORKLOAD="stand-in order tx (order row + 2 lines + 2 stock updates + change trigger)"
    script() { echo "-f test/bench/events_place.sql"; }
fi

PM_PID=$(head -1 "$ES_TMP/data/postmaster.pid")
TCK=$(getconf CLK_TCK)
# CPU ticks used by the server so far: exited backends (postmaster's cutime/cstime) + live ones.
server_ticks() {
    local t f
    f=$(cut -d' ' -f14-17 "/proc/$PM_PID/stat")
    t=$(echo "$f" | awk '{print $1 + $2 + $3 + $4}')
    for c in $(pgrep -P "$PM_PID"); do
        f=$(cut -d' ' -f14-15 "/proc/$c/stat" 2>/dev/null) && t=$((t + $(echo "$f" | awk '{print $1 + $2}')))
    done
    echo "$t"
}
proc_ticks() { cut -d' ' -f14-15 "/proc/$1/stat" 2>/dev/null | awk '{print $1 + $2}'; }

# run <db> [pgbench args]: sets R_TPS and R_CPU (server + listener CPU microseconds per
# transaction) and R_PARTS (the publisher's, the listener's backend's and client's share)
run() {
    local db=$1 t0 t1 l0=0 l1=0 out n ppid lbpid p0=0 p1=0 b0=0 b1=0 m0 m1
    shift
    # Every run starts from a checkpoint, with the tables vacuumed and analyzed
    # by the run before (autovacuum is off during section 1: see below).
    psql -X -q -d "$db" -c "CHECKPOINT" >/dev/null
    sleep 0.3      # its backend exits and is counted (cutime) before t0, not inside the run
    ppid=$(psql -X -A -t -d "$db" -c "SELECT elfsofa.publisher_status()->>'worker_pid'")
    lbpid=$(psql -X -A -t -d "$db" -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'elfsofa-listen' AND datname = current_database() LIMIT 1")
    t0=$(server_ticks); [ -n "${LPID:-}" ] && l0=$(proc_ticks "$LPID")
    [ -n "$ppid" ] && p0=$(proc_ticks "$ppid"); [ -n "$lbpid" ] && b0=$(proc_ticks "$lbpid")
    out=$(pgbench -n -c 8 -j 2 -T "$SECS" $(script "$db") "$@" "$db" 2>/dev/null)
    # The publisher's work for this run is counted in full: wait until it has
    # sent the last committed event (R_LAG: how long after the run that was).
    R_LAG=0
    if [ -n "$ppid" ]; then
        local w0 w1
        w0=$(date +%s%N)
        for _ in $(seq 1 200); do
            [ "$(psql -X -A -t -d "$db" -c "SELECT coalesce((elfsofa.publisher_status()->>'last_id')::bigint, 0) >= coalesce((SELECT max(id) FROM elfsofa.events), 0)")" = t ] && break
            sleep 0.05
        done
        w1=$(date +%s%N)
        R_LAG=$(( (w1 - w0) / 1000000 ))
    fi
    sleep 0.5      # let the listener print what was sent
    [ -n "${LPID:-}" ] && l1=$(proc_ticks "$LPID")
    [ -n "$ppid" ] && p1=$(proc_ticks "$ppid"); [ -n "$lbpid" ] && b1=$(proc_ticks "$lbpid")
    t1=$(server_ticks)
    # the VACUUM ANALYZE of what this run wrote, measured on its own (R_MAINT)
    m0=$(server_ticks)
    psql -X -q -d "$db" -c "VACUUM ANALYZE" >/dev/null
    sleep 0.3
    m1=$(server_ticks)
    R_TPS=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
    n=$(echo "$out" | awk '/actually processed/ {print $NF}' | cut -d/ -f1)
    R_CPU=$(echo "($t1 - $t0 + $l1 - $l0) * 1000000 / $TCK / $n" | bc)
    R_MAINT=$(echo "($m1 - $m0) * 1000000 / $TCK / $n" | bc)
    R_PARTS=$(awk -v p=$((${p1:-0} - ${p0:-0})) -v b=$((${b1:-0} - ${b0:-0})) -v l=$((l1 - l0)) -v k="$TCK" -v n="$n" \
        'BEGIN { printf "publisher %.0f, listener backend %.0f + client %.0f", p * 1e6 / k / n, b * 1e6 / k / n, l * 1e6 / k / n }')
}

start_listener() {   # start_listener <db> <outfile> [--timing]
    PGDATABASE=$1 "$LISTEN" ${3:-} >"$2" 2>/dev/null &
    LPID=$!
    sleep 0.5
}

echo "== bench events: $WORKLOAD, database $DB ($MODE mode)"
ROUNDS=${EVENTS_ROUNDS:-2}
echo "-- 1. throughput, 8 clients, ${SECS}s per run, mean of $ROUNDS rounds (elfsofa-listen connected in the event runs)"
# Rounds (2 by default, EVENTS_ROUNDS), interleaved (off first in odd rounds, on first
# in even ones), so drift on a shared machine and the growing tables hit both alike;
# each round's own ratio is printed too.  Throughput on 2 shared cores swings with the
# neighbours' load, so the CPU each transaction costs (server processes + the
# listener) is reported as well: its ratio is what throughput converges to when the
# machine is ours alone.  Autovacuum is off for these runs (one falling into a 10 s
# run costs ~40-100 us per order in whichever mode drew it); each run is followed by
# a VACUUM ANALYZE of what it wrote, whose CPU is reported per order on its own.
psql -X -q -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
PGOPTIONS='-c elfsofa.emit_events=off' pgbench -n -c 8 -j 2 -T 3 $(script $DB) $DB >/dev/null 2>&1
pgbench -n -c 8 -j 2 -T 3 $(script $DB) $DB >/dev/null 2>&1
psql -X -q -d $DB -c "VACUUM ANALYZE" >/dev/null
T_OFF=0; T_ON=0; C_OFF=0; C_ON=0; M_OFF=0; M_ON=0
run_off() {
    LPID=""; PGOPTIONS='-c elfsofa.emit_events=off' run $DB
    T_OFF=$((T_OFF + R_TPS)); C_OFF=$((C_OFF + R_CPU)); M_OFF=$((M_OFF + R_MAINT)); RT_OFF=$R_TPS; RC_OFF=$R_CPU
    echo "   round $round: events off                        $R_TPS tps, $R_CPU us CPU/tx, vacuum $R_MAINT"
}
run_on() {
    start_listener $DB /dev/null; run $DB; kill $LPID; wait $LPID 2>/dev/null; LPID=""
    T_ON=$((T_ON + R_TPS)); C_ON=$((C_ON + R_CPU)); M_ON=$((M_ON + R_MAINT)); RT_ON=$R_TPS; RC_ON=$R_CPU
    echo "   round $round: events on ($MODE mode)              $R_TPS tps, $R_CPU us CPU/tx, vacuum $R_MAINT ($R_PARTS; publisher done ${R_LAG} ms after the run)"
}
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run_off; run_on; else run_on; run_off; fi
    printf '   round %d: events on vs off: tps %.2f, CPU %.2f\n' "$round" "$(echo "$RT_ON / $RT_OFF" | bc -l)" "$(echo "$RC_OFF / $RC_ON" | bc -l)"
done
psql -X -q -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
printf '%-34s %6d tps  %5d us CPU/tx  vacuum %3d\n' "events off" $((T_OFF / ROUNDS)) $((C_OFF / ROUNDS)) $((M_OFF / ROUNDS))
printf '%-34s %6d tps  %5d us CPU/tx  vacuum %3d  ratio tps %.2f, CPU %.2f, CPU with vacuum %.2f (target >= 0.90)\n' \
    "events on ($MODE mode)" $((T_ON / ROUNDS)) $((C_ON / ROUNDS)) $((M_ON / ROUNDS)) \
    "$(echo "$T_ON / $T_OFF" | bc -l)" "$(echo "$C_OFF / $C_ON" | bc -l)" "$(echo "($C_OFF + $M_OFF) / ($C_ON + $M_ON)" | bc -l)"

echo "   (section 1: $(($(date +%s) - T_START)) s since the start)"
echo "-- 2. commit -> subscriber latency at 500 tx/s (${SECS}s, 4 clients), quiet and with an unrelated transaction idle"
IDLE_IN=$OUT/events_idle.in
# latency <label>: one pgbench run with a --timing listener; sets P50, P99, MAX, N
latency() {
    local f=$OUT/events_latency_$1 want
    start_listener $DB "$f.jsonl" --timing
    pgbench -n -c 4 -j 2 -R 500 -T "$SECS" $(script $DB) $DB >/dev/null 2>&1
    [ "$1" = idle ] && idle_end
    want=$(psql -X -A -t -d $DB -c "SELECT count(*) FROM elfsofa.events WHERE id > $L_FROM")
    for _ in $(seq 1 300); do   # until it printed them all (at most 30 s)
        [ "$(wc -l <"$f.jsonl")" -ge "$want" ] && break
        sleep 0.1
    done
    kill $LPID; wait $LPID 2>/dev/null
    grep -o '"latency_ms": [0-9.]*' "$f.jsonl" | awk '{print $2}' | sort -n >"$f.txt"
    N=$(wc -l <"$f.txt")
    P50=$(awk -v n="$N" 'NR == int(n * 0.50) + 1' "$f.txt")
    P99=$(awk -v n="$N" 'NR == int(n * 0.99) + 1' "$f.txt")
    MAX=$(tail -1 "$f.txt")
    printf '%-44s events %6d of %6d  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n' "$2" "$N" "$want" "$P50" "$P99" "$MAX"
}
idle_start() {   # BEGIN; INSERT; and then nothing, in a session of its own
    rm -f "$IDLE_IN"; mkfifo "$IDLE_IN"
    timeout $((SECS + 60)) psql -X -q -d $DB <"$IDLE_IN" >/dev/null 2>&1 &
    IDLE_PID=$!
    exec {IDLE_FD}>"$IDLE_IN"
    echo "BEGIN; INSERT INTO public.bench_other VALUES (1);" >&$IDLE_FD
    sleep 0.5
}
idle_end() {
    IDLE_STATE=$(psql -X -A -t -d $DB -c "SELECT string_agg(state, ',') FROM pg_stat_activity WHERE query LIKE 'INSERT INTO public.bench_other%'")
    IDLE_SEEN=$(wc -l <"$OUT/events_latency_idle.jsonl")
    # (\q: processes started since hold the fifo open too, so psql would not see its end)
    printf 'COMMIT;\n\\q\n' >&$IDLE_FD; exec {IDLE_FD}>&-
    wait $IDLE_PID 2>/dev/null
}
L_FROM=$(psql -X -A -t -d $DB -c "SELECT coalesce(max(id), 0) FROM elfsofa.events")
latency quiet "quiet"
Q50=$P50; Q99=$P99
L_FROM=$(psql -X -A -t -d $DB -c "SELECT coalesce(max(id), 0) FROM elfsofa.events")
idle_start
latency idle "an unrelated transaction idle the whole run"
echo "   (the idle transaction was '$IDLE_STATE' at the end of the run; the listener had printed $IDLE_SEEN events by then)"
printf 'idle / quiet: p50 %.2fx, p99 %.2fx (target: p99 within 2x of quiet and < 50 ms)\n' \
    "$(echo "$P50 / $Q50" | bc -l)" "$(echo "$P99 / $Q99" | bc -l)"

echo "   (section 2: $(($(date +%s) - T_START)) s since the start)"
BACKLOG=${EVENTS_BACKLOG:-100000}
echo "-- 3. catch-up of $BACKLOG events through events_since (elfsofa-listen, batches of 5000)"
psql -X -q -d $DB -c "TRUNCATE elfsofa.events" \
    -c "SET elfsofa.emit_events = off" \
    -c "INSERT INTO elfsofa.events (topic, key, data) SELECT 'bench.backlog', g::text, jsonb_build_object('order_id', g, 'total', 1780.00, 'items', 2) FROM generate_series(1, $BACKLOG) g" \
    -c "VACUUM ANALYZE elfsofa.events"
last=$(psql -X -A -t -d $DB -c "SELECT max(id) FROM elfsofa.events")
first=$(psql -X -A -t -d $DB -c "SELECT min(id) - 1 FROM elfsofa.events")
rm -f "$OUT/events_catchup.state"
t0=$(date +%s.%N)
PGDATABASE=$DB "$LISTEN" --from-id "$first" --state-file "$OUT/events_catchup.state" >"$OUT/events_catchup.jsonl" 2>/dev/null &
LPID=$!
for _ in $(seq 1 600); do [ "$(cat "$OUT/events_catchup.state" 2>/dev/null)" = "$last" ] && break; sleep 0.02; done
t1=$(date +%s.%N)
kill $LPID; wait $LPID 2>/dev/null
n=$(wc -l <"$OUT/events_catchup.jsonl")
printf 'listener caught up %d events in %.2f s: %.0f events/s (target >= 50,000)\n' "$n" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$n / ($t1 - $t0)" | bc -l)"
t0=$(date +%s.%N)
psql -X -q -d $DB -c "DO \$\$ DECLARE a bigint := $first; b bigint; BEGIN LOOP SELECT max(id) INTO b FROM elfsofa.events_since(a, 10000); EXIT WHEN b IS NULL; a := b; END LOOP; END \$\$"
t1=$(date +%s.%N)
printf 'events_since in SQL (batches of 10000): %.0f events/s\n' "$(echo "$n / ($t1 - $t0)" | bc -l)"
rm -f "$OUT/events_catchup.state"
echo "events bench: $(($(date +%s) - T_START)) s (and a server restart)"
