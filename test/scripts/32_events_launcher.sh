#!/usr/bin/env bash
# One event publisher per database where elfsofa is installed, with no
# setting to remember (src/events/launcher.c): it starts after CREATE
# EXTENSION commits, announces the events of its own database, leaves with
# DROP EXTENSION, comes back with CREATE EXTENSION, and gets out of the way of
# ALTER DATABASE ... RENAME and DROP DATABASE; elfsofa.publisher = off keeps
# a database in commit mode.  Every wait is bounded.
source "$(dirname "$0")/../tap.sh"
OUT=$ES_TMP/launcher
mkdir -p "$OUT"
DB=elfsofa_launch_a
DB2=elfsofa_launch_b

status() { q -d "$1" -c "SELECT elfsofa.publisher_status()->>'$2'"; }
wait_mode() {   # wait_mode <db> <mode>: up to 5 s
    for _ in $(seq 1 50); do
        [ "$(status "$1" mode 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
backend_gone() {   # backend_gone <pid>: up to 5 s
    for _ in $(seq 1 50); do
        [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $1")" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}

q -c "DROP DATABASE IF EXISTS $DB" -c "DROP DATABASE IF EXISTS ${DB}_renamed" -c "DROP DATABASE IF EXISTS $DB2" \
  -c "CREATE DATABASE $DB" -c "CREATE DATABASE $DB2" >/dev/null
q -d $DB -c "CREATE EXTENSION elfsofa" >/dev/null

wait_mode $DB worker
tap_is "$(status $DB mode)/$(status $DB publisher)" "worker/running" \
    "after CREATE EXTENSION a publisher serves the new database (within 5 s)"
pid=$(status $DB worker_pid)
tap_is "$(q -c "SELECT datname FROM pg_stat_activity WHERE pid = ${pid:-0}")" "$DB" "it is connected to that database (pid $pid)"
tap_is "$(q -d $DB -c "SELECT c->>'status' FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'event_publisher'")" \
    ok "health(): event_publisher ok"

# its NOTIFYs: a LISTEN session sees each committed event once, sent by the publisher
( echo "LISTEN elfsofa_events;"; sleep 3; echo "SELECT 1;" ) | psql -X -q -d $DB >"$OUT/listen.out" 2>&1 &
lpid=$!
sleep 0.5
first=$(q -d $DB -c "SELECT elfsofa.emit_event('launcher.test', 'k' || g) FROM generate_series(1, 5) g" | head -1)
q -d $DB -c "BEGIN" -c "SELECT elfsofa.emit_event('launcher.test', 'rolled-back')" -c "ROLLBACK" >/dev/null
wait $lpid
tap_is "$(grep -c 'with payload' "$OUT/listen.out")" 5 "a LISTEN session got the 5 committed events, not the rolled-back one"
tap_is "$(grep 'with payload' "$OUT/listen.out" | grep -vc "from server process with PID $pid")" 0 \
    "every NOTIFY came from the publisher (pid $pid), none from the writer"
tap_is "$(q -d $DB -c "SELECT last_id >= $first + 4 FROM elfsofa.event_publisher")" t "its stored position passed them"

# a database with elfsofa.publisher = off stays in commit mode
q -c "ALTER DATABASE $DB2 SET elfsofa.publisher = off" >/dev/null
q -d $DB2 -c "CREATE EXTENSION elfsofa" >/dev/null
q -d $DB2 -c "SELECT elfsofa.emit_event('launcher.test', 'off')" >/dev/null
sleep 1
tap_is "$(status $DB2 mode)" commit "elfsofa.publisher = off keeps a database in commit mode"

# DROP EXTENSION: the publisher leaves; CREATE EXTENSION: a new one comes
q -d $DB -c "DROP EXTENSION elfsofa" >/dev/null
tap_ok "$(backend_gone "$pid"; echo $?)" "after DROP EXTENSION the publisher leaves the database (within 5 s)"
q -d $DB -c "CREATE EXTENSION elfsofa" >/dev/null
wait_mode $DB worker
pid=$(status $DB worker_pid)
tap_ok "$([ -n "$pid" ]; echo $?)" "CREATE EXTENSION again: a publisher serves it again (pid $pid)"

# an error inside the publisher (here its own table's column renamed under
# it) is logged and retried: once it is put back the publisher publishes again
# (after a second error too: the error context of the first must not outlive it)
log=$ES_TMP/log/server.log
q -d $DB -c "ALTER TABLE elfsofa.event_publisher RENAME COLUMN last_id TO last_id_moved" >/dev/null
q -d $DB -c "SELECT elfsofa.emit_event('launcher.test', 'while-broken')" >/dev/null
errs=0
for _ in $(seq 1 80); do
    errs=$(grep -c "\[$pid\] .*column \"last_id\" does not exist" "$log")
    [ "$errs" -ge 3 ] && break
    sleep 0.1
done
tap_ok "$([ "$errs" -ge 3 ]; echo $?)" "the publisher logs the error and retries it ($errs errors logged)"
timeout 20 psql -X -q -d $DB -c "ALTER TABLE elfsofa.event_publisher RENAME COLUMN last_id_moved TO last_id" >/dev/null
after=$(q -d $DB -c "SELECT elfsofa.emit_event('launcher.test', 'repaired')" | head -1)
ok=1
for _ in $(seq 1 50); do
    [ "$(q -d $DB -c "SELECT last_id >= ${after:-0} FROM elfsofa.event_publisher")" = t ] && { ok=0; break; }
    sleep 0.1
done
tap_ok $ok "repaired: the same publisher (pid $pid) publishes the next event within 5 s"
tap_is "$(status $DB worker_pid)/$(grep -c "\[$pid\] .*terminated by signal\|(PID $pid) was terminated" "$log")" "$pid/0" \
    "... still running, never crashed"

# statements that need the database to themselves are not refused because of it
tap_ok "$(timeout 30 psql -X -q -At -v ON_ERROR_STOP=1 -c "ALTER DATABASE $DB RENAME TO ${DB}_renamed" >"$OUT/rename.out" 2>&1; echo $?)" \
    "ALTER DATABASE ... RENAME succeeds while its publisher runs $(head -c 200 "$OUT/rename.out")"
q -d ${DB}_renamed -c "SELECT elfsofa.emit_event('launcher.test', 'after-rename')" >/dev/null
wait_mode ${DB}_renamed worker
tap_is "$(status ${DB}_renamed mode)" worker "a publisher serves the renamed database"
pid=$(status ${DB}_renamed worker_pid)
tap_ok "$(timeout 30 psql -X -q -At -v ON_ERROR_STOP=1 -c "DROP DATABASE ${DB}_renamed" >"$OUT/drop.out" 2>&1; echo $?)" \
    "DROP DATABASE succeeds while its publisher runs $(head -c 200 "$OUT/drop.out")"
tap_ok "$(backend_gone "${pid:-0}"; echo $?)" "... and its publisher is gone"
tap_is "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'elfsofa publisher launcher'")" 1 \
    "one launcher runs"

q -c "DROP DATABASE $DB2" >/dev/null
tap_done
