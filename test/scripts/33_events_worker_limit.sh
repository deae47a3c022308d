#!/usr/bin/env bash
# test/scripts/33_events_worker_limit.sh — more databases with elfsofa than
# max_worker_processes leaves publishers for (src/events/launcher.c).
#
# A server of its own with max_worker_processes = 5: the elfsofa launcher,
# pg_cron's launcher and the logical replication launcher take three, so two
# publishers fit.  elfsofa goes into three databases, one after the other:
#   - the first two are served by publishers (worker mode);
#   - the third stays in commit mode and loses no event: a LISTEN session
#     gets each NOTIFY at commit, from the writer;
#   - the server log says why, once for that database (not once a second);
#   - health() there warns (event_publisher, naming max_worker_processes),
#     and is ok where a publisher runs;
#   - when a worker frees up (DROP EXTENSION in a served database), the
#     waiting database gets its publisher within 10 s, and its NOTIFYs then
#     come from that publisher.
# Every wait is bounded.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

rel_fresh_server $((ES_PORT + 25)) "$ES_TMP/events-worker-limit" <<'CONF' ||
max_worker_processes = 5
max_parallel_workers = 0
max_parallel_workers_per_gather = 0
CONF
    { echo "not ok 1 - the worker-limit server started"; echo "1..1"; exit 1; }
OUT=$ES_TMP/work
rm -rf "$OUT"; mkdir -p "$OUT"
trap es_stop_server EXIT
LOG=$ES_TMP/log/server.log

qt() { timeout 20 psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
status() { qt -d "$1" -c "SELECT elfsofa.publisher_status()->>'$2'"; }
wait_status() {   # wait_status <db> <field> <value> <seconds>
    for _ in $(seq 1 $(($4 * 10))); do
        [ "$(status "$1" "$2" 2>/dev/null)" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
health_pub() {   # health_pub <db> <field>: the event_publisher check's status or detail
    qt -d "$1" -c "SELECT c->>'$2' FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'event_publisher'"
}
# listen_one <db> <out>: a LISTEN session for 3 s in the background (pid in LPID)
listen_one() {
    ( echo "LISTEN elfsofa_events;"; sleep 3; echo "SELECT 1;" ) | psql -X -q -d "$1" >"$2" 2>&1 &
    LPID=$!
    sleep 0.5
}

for db in wl_a wl_b wl_c; do
    qt -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
done
qt -d wl_a -c "CREATE EXTENSION elfsofa" >/dev/null
wait_status wl_a publisher running 10
qt -d wl_b -c "CREATE EXTENSION elfsofa" >/dev/null
wait_status wl_b publisher running 10
tap_is "$(status wl_a mode)/$(status wl_b mode)" "worker/worker" "the first two databases get a publisher each"

qt -d wl_c -c "CREATE EXTENSION elfsofa" >/dev/null
wait_status wl_c publisher no_worker 10
tap_is "$(status wl_c publisher)/$(status wl_c mode)" "no_worker/commit" \
    "the third finds no worker left: it stays in commit mode"

# (a) no event is lost there: NOTIFYed by the writer at commit
listen_one wl_c "$OUT/listen_c1.out"
wpid=$(qt -d wl_c -c "SELECT pg_backend_pid(), elfsofa.emit_event('limit.test', 'k' || g) FROM generate_series(1, 3) g" | head -1 | cut -d'|' -f1)
wait $LPID
tap_is "$(grep -c 'with payload' "$OUT/listen_c1.out")" 3 "a LISTEN session in it got its 3 events"
tap_is "$(grep 'with payload' "$OUT/listen_c1.out" | grep -vc "from server process with PID $wpid")" 0 \
    "... each NOTIFYed at commit by the writer (pid $wpid)"

# (b) the log says why, once for that database, though the launcher keeps trying
sleep 3
tap_is "$(grep -c 'no background worker left for the event publisher of database "wl_c"' "$LOG")" 1 \
    "the server log says it once for database wl_c, by name (3 s of retries later)"
tap_ok "$(grep -A2 'no background worker left for the event publisher of database "wl_c"' "$LOG" | grep "max_worker_processes" >/dev/null; echo $?)" \
    "... with the hint to raise max_worker_processes"

# (c) health() warns where no publisher runs, and only there
tap_is "$(health_pub wl_c status)" warn "health() in that database: event_publisher warns"
tap_ok "$(health_pub wl_c detail | grep "max_worker_processes = 5" >/dev/null; echo $?)" \
    "... naming the cause: $(health_pub wl_c detail)"
tap_is "$(health_pub wl_a status)/$(qt -d wl_a -c "SELECT elfsofa.health()->>'status'")" "ok/ok" \
    "health() where a publisher runs: ok"

# (d) a worker frees up: the waiting database gets it
apid=$(status wl_a worker_pid)
qt -d wl_a -c "DROP EXTENSION elfsofa" >/dev/null
tap_ok "$(wait_status wl_c publisher running 10; echo $?)" \
    "after DROP EXTENSION in a served database, the waiting one gets a publisher within 10 s"
cpid=$(status wl_c worker_pid)
tap_ok "$([ -n "$cpid" ] && [ "$cpid" != "$apid" ]; echo $?)" "... a publisher of its own (pid $cpid)"
listen_one wl_c "$OUT/listen_c2.out"
qt -d wl_c -c "SELECT elfsofa.emit_event('limit.test', 'after')" >/dev/null
wait $LPID
tap_is "$(grep -c "with payload.*from server process with PID $cpid" "$OUT/listen_c2.out")" 1 \
    "its next event is NOTIFYed by that publisher"
tap_is "$(health_pub wl_c status)" ok "health() there is ok again"
tap_is "$(rel_crash_lines | wc -l)" 0 "no backend crashed"

es_stop_server
trap - EXIT
tap_done
