#!/usr/bin/env bash
# test/scripts/31_events_chaos.sh — the event stream under chaos, checked by a ledger.
#
# A server of its own (elfsofa preloaded, so database postgres is served by the
# background publisher; a second database, elfsofa_chaos_commit, NOTIFYs at
# commit while the publisher serves only elfsofa.database).  In each database,
# for the whole run: 4 writers commit events (some transactions roll back, some
# lose a subtransaction's event), one
# elfsofa-listen prints what it is handed (--state-file), and one
# consumer_poll/consumer_ack consumer records what it polls in the same
# transaction as its ack.  Meanwhile, one after the other:
#   (a) an unrelated transaction (BEGIN; INSERT into another table) idles 30 s;
#   (b) a REPEATABLE READ reader holds its snapshot 30 s;
#   (c) the publisher is killed with SIGKILL inside a batch transaction, right
#       after a 20000-event burst (the postmaster then restarts every backend);
#   (d) the postmaster is restarted, with -m fast and with -m immediate;
#   (e) the listeners are killed with SIGKILL and restarted from their state files;
#   (f) a transaction holds an event id open for 10 s.
# (a) and (b) also check that delivery did not stall: events committed during
# the window reach both consumers while the transaction is still open.  (f)
# checks that no later id is handed out before the holder commits.  At the end
# the ledger — every id committed (elfsofa.events; every id a writer was told
# committed must be there) against every id each consumer saw, in the order it
# saw them — must show, per case and consumer, 0 lost, 0 duplicated, 0
# reordered, 0 never committed.  Every wait is bounded.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

WDB=postgres                 # worker mode (elfsofa.database)
CDB=elfsofa_chaos_commit     # commit mode
rel_fresh_server $((ES_PORT + 23)) "$ES_TMP/events-chaos" <<<"elfsofa.publisher_delay = 5" ||
    { echo "not ok 1 - the chaos server started"; exit 1; }
T_START=$(date +%s)
D=$ES_TMP/work
rm -rf "$D"; mkdir -p "$D"
LISTEN=$ES_BINDIR/elfsofa-listen
DEADLINE=$(($(date +%s) + 240))    # nothing of ours runs past this
PIDS=""

cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    es_stop_server
}
trap cleanup EXIT

# psql with a time limit, one unaligned value
qt() { timeout 20 psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
wait_ready() {   # until the server accepts connections (at most $1 s)
    for _ in $(seq 1 $(($1 * 10))); do
        pg_isready -q && qt -c "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

qt -c "CREATE DATABASE $CDB" >/dev/null
for db in $WDB $CDB; do
    qt -d $db -c "SET client_min_messages = warning; CREATE EXTENSION elfsofa" \
        -c "CREATE TABLE public.chaos_ctl (stop boolean NOT NULL)" -c "INSERT INTO public.chaos_ctl VALUES (false)" \
        -c "CREATE TABLE public.chaos_other (n int)" \
        -c "CREATE TABLE public.chaos_seen (seq bigserial PRIMARY KEY, id bigint NOT NULL)" \
        -c "CREATE INDEX ON public.chaos_seen (id)" >/dev/null
done
tap_is "$(qt -d $WDB -c "SELECT elfsofa.publisher_status()->>'mode'")" worker "database $WDB is served by the background publisher"
# (commit mode today; a publisher of its own once one runs in every database)
echo "# database $CDB: $(qt -d $CDB -c "SELECT elfsofa.publisher_status()->>'mode'") mode"

# --- the workload -----------------------------------------------------------
# writer <db> <n>: transactions of 1-2 events until chaos_ctl.stop; every 11th
# rolls back, every 4th also loses the event of a subtransaction; after each
# commit a NOTICE names the ids it committed (the writers' side of the ledger).
# A lost connection (cases c, d) starts a new session.
writer() {
    local db=$1 w=$2
    while [ "$(date +%s)" -lt $DEADLINE ]; do
        psql -X -q -d "$db" -c "
        DO \$\$
        DECLARE a bigint; b bigint;
        BEGIN
            FOR i IN 1..100000 LOOP
                EXIT WHEN (SELECT stop FROM public.chaos_ctl) OR clock_timestamp() > to_timestamp($DEADLINE);
                a := elfsofa.emit_event('chaos.write', '$w-' || i);
                b := NULL;
                IF i % 2 = 0 THEN b := elfsofa.emit_event('chaos.write', '$w-' || i || 'b'); END IF;
                IF i % 4 = 0 THEN
                    BEGIN
                        PERFORM elfsofa.emit_event('chaos.write', '$w-' || i || 'sub');
                        RAISE EXCEPTION 'undo';
                    EXCEPTION WHEN raise_exception THEN NULL;
                    END;
                END IF;
                IF i % 11 = 0 THEN ROLLBACK;
                ELSE
                    COMMIT;
                    RAISE NOTICE 'committed % %', a, coalesce(b::text, '');
                END IF;
                PERFORM pg_sleep(0.015);
            END LOOP;
        END
        \$\$" 2>&1 | grep -o 'committed [0-9 ]*' >>"$D/$db.writer$w"
        [ "$(qt -d "$db" -c "SELECT stop FROM public.chaos_ctl" 2>/dev/null)" = t ] && break
        sleep 0.3
    done
}

# poller <db>: consumer_poll and consumer_ack in one transaction with the record
# of what was polled, in the order polled (exactly once, across crashes too)
poller() {
    local db=$1
    while [ "$(date +%s)" -lt $DEADLINE ] && [ ! -e "$D/$db.poll.stop" ]; do
        timeout 10 psql -X -q -d "$db" -v ON_ERROR_STOP=1 >/dev/null 2>>"$D/$db.poll.err" <<'SQL'
BEGIN;
INSERT INTO public.chaos_seen (id)
    SELECT p.id FROM elfsofa.consumer_poll('chaos', 500) WITH ORDINALITY p ORDER BY p.ordinality;
SELECT elfsofa.consumer_ack('chaos', l.id) FROM (SELECT id FROM public.chaos_seen ORDER BY seq DESC LIMIT 1) l;
COMMIT;
SQL
        sleep 0.05
    done
}

start_listener() {   # start_listener <db> [--from-id N]
    local db=$1; shift
    PGDATABASE=$db "$LISTEN" "$@" --state-file "$D/$db.state" >>"$D/$db.listen" 2>>"$D/$db.listen.err" &
    PIDS="$PIDS $!"
    echo $! >"$D/$db.listen.pid"
    disown $!   # (no "Killed" line from bash in case e)
}
# the ids elfsofa-listen printed, in order (each line is {"id": N, ...})
listen_ids() { sed -nE 's/^\{ *"id": *([0-9]+).*/\1/p' "$D/$1.listen" 2>/dev/null; }
listen_max() { listen_ids "$1" | tail -1 | grep . || echo 0; }
poll_max() { qt -d "$1" -c "SELECT coalesce(max(id), 0) FROM public.chaos_seen" 2>/dev/null; }
committed_max() { qt -d "$1" -c "SELECT coalesce(max(id), 0) FROM elfsofa.events" 2>/dev/null; }
# reached <db> <id> <seconds>: whether both consumers saw an id >= <id> within the time
reached() {
    local l p until=$(($(date +%s%N) + $3 * 1000000000))
    while :; do
        l=$(listen_max "$1"); p=$(poll_max "$1")
        [ "${l:-0}" -ge "$2" ] && [ "${p:-0}" -ge "$2" ] && return 0
        [ "$(date +%s%N)" -gt $until ] && break
        sleep 0.1
    done
    echo "#   $1: wanted $2, listener at ${l:-none}, poller at ${p:-none}" >&2
    return 1
}

# A session kept open: statements go in through a fifo, results come out in a file.
sess_open() {   # sess_open <name> <db>
    mkfifo "$D/$1.in"
    timeout $((DEADLINE - $(date +%s))) psql -X -A -t -q -d "$2" <"$D/$1.in" >"$D/$1.out" 2>&1 &
    PIDS="$PIDS $!"
    exec {SESS_FD}>"$D/$1.in"
    eval "SESS_$1=$SESS_FD"
}
sess_send() { local fd; eval "fd=\$SESS_$1"; echo "$2" >&"$fd"; }
sess_close() { local fd; eval "fd=\$SESS_$1"; echo '\q' >&"$fd"; eval "exec $fd>&-"; }
sess_wait() {   # sess_wait <name> <text>: waits (at most 10 s) for a line saying it
    for _ in $(seq 1 100); do
        grep -qx "$2" "$D/$1.out" && return 0
        sleep 0.1
    done
    return 1
}
sess_line() {   # sess_line <name> <line number>: waits (at most 10 s) for it
    for _ in $(seq 1 100); do
        [ "$(wc -l <"$D/$1.out")" -ge "$2" ] && { sed -n "$2p" "$D/$1.out"; return 0; }
        sleep 0.1
    done
    return 1
}
backend_state() { qt -d "$1" -c "SELECT state FROM pg_stat_activity WHERE pid = $2"; }

MARKS="start:0:0"
mark() { MARKS="$MARKS $1:$(committed_max $WDB):$(committed_max $CDB)"; }

for db in $WDB $CDB; do
    start_listener $db --from-id 0
    for w in 1 2 3 4; do writer $db $w & PIDS="$PIDS $!"; WPIDS="${WPIDS:-} $!"; done
    poller $db & PIDS="$PIDS $!"; PPIDS="${PPIDS:-} $!"
done
sleep 3
tap_ok "$(reached $WDB "$(committed_max $WDB)" 10 && reached $CDB "$(committed_max $CDB)" 10; echo $?)" \
    "both consumers follow the writers in both databases"

# --- (a), (b): a transaction left open 30 s, in both databases ---------------------
open_window() {   # open_window <case> <BEGIN ...> <statement>
    local c=$1 db pid target t0
    mark "$c"
    for db in $WDB $CDB; do
        sess_open "$c$db" $db
        sess_send "$c$db" "SELECT pg_backend_pid();"
        sess_send "$c$db" "$2;"
        sess_send "$c$db" "$3;"
        sess_send "$c$db" "SELECT 'open';"
    done
    t0=$(date +%s)
    for db in $WDB $CDB; do sess_wait "$c$db" open; done
    sleep 20
    for db in $WDB $CDB; do
        pid=$(sess_line "$c$db" 1)
        target=$(committed_max $db)
        tap_ok "$(reached $db "$target" 5; echo $?)" \
            "($c) $db: events committed 20 s into the window (up to id $target) reached both consumers within 5 s"
        tap_is "$(backend_state $db "$pid")" "idle in transaction" "($c) $db: ... while the open transaction was still open"
    done
    [ $((t0 + 30 - $(date +%s))) -gt 0 ] && sleep $((t0 + 30 - $(date +%s)))
    for db in $WDB $CDB; do sess_send "$c$db" "COMMIT;"; sess_close "$c$db"; done
    echo "# ($c) window open $(($(date +%s) - t0)) s"
}
open_window a "BEGIN" "INSERT INTO public.chaos_other VALUES (1)"
open_window b "BEGIN ISOLATION LEVEL REPEATABLE READ" "SELECT count(*) FROM elfsofa.events"

# --- (c) the publisher killed with SIGKILL mid-batch ---------------------------------
# A burst of 20000 events is committed; then a session locks the publisher's
# position table (SHARE: no xid, so no watermark waits for it), so its next batch
# transaction stops at the position update with its NOTIFYs queued and not yet
# sent: it is killed there.
mark c
sess_open lock $WDB
sess_send lock "BEGIN;"
read -r bmin burst < <(qt -F ' ' -d $WDB -c "SELECT min(x), max(x) FROM (SELECT elfsofa.emit_event('chaos.burst', g::text) x FROM generate_series(1, 20000) g) s")
sess_send lock "LOCK TABLE elfsofa.event_publisher IN SHARE MODE;"
ppid=$(qt -d $WDB -c "SELECT elfsofa.publisher_status()->>'worker_pid'")
for _ in $(seq 1 100); do   # until it waits for that lock (at most 10 s)
    waiting=$(qt -d $WDB -c "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $ppid")
    [ "$waiting" = Lock ] && break
    sleep 0.1
done
sent=$(qt -d $WDB -c "SELECT elfsofa.publisher_status()->>'last_id'")
kill -9 "$ppid"
eval "exec $SESS_lock>&-"
echo "# (c) publisher $ppid killed inside a batch, sent up to $sent (burst $bmin-$burst)"
tap_is "$waiting" Lock "(c) the publisher was killed inside a batch transaction (waiting to store its position)"
sleep 1
tap_ok "$(wait_ready 30; echo $?)" "(c) the server is back after the crash restart"
tap_ok "$(rel_crash_lines | grep "terminated by signal 9" >/dev/null; echo $?)" "(c) the postmaster saw the publisher die of SIGKILL"
newpid=""
for _ in $(seq 1 150); do
    newpid=$(qt -d $WDB -c "SELECT elfsofa.publisher_status()->>'worker_pid'" 2>/dev/null)
    [ -n "$newpid" ] && [ "$newpid" != "$ppid" ] && break
    sleep 0.1
done
tap_ok "$([ -n "$newpid" ] && [ "$newpid" != "$ppid" ]; echo $?)" "(c) a new publisher runs (pid ${newpid:-none})"
tap_ok "$(reached $WDB "$(committed_max $WDB)" 30 && reached $CDB "$(committed_max $CDB)" 30; echo $?)" "(c) both consumers caught up after the crash"

# --- (d) the postmaster restarted ------------------------------------------------------
for m in fast immediate; do
    mark "d-$m"
    sleep 1
    es_as_server_user "$ES_BINDIR/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/log/server.log" -m $m -w -t 60 restart >/dev/null 2>&1
    tap_ok "$(wait_ready 30; echo $?)" "(d) the server is back after pg_ctl restart -m $m"
    sleep 2   # the writers commit again
    tap_ok "$(reached $WDB "$(committed_max $WDB)" 30 && reached $CDB "$(committed_max $CDB)" 30; echo $?)" \
        "(d) both consumers caught up after restart -m $m"
done

# --- (e) the listeners killed with SIGKILL and restarted from their state files ----------
mark e
for db in $WDB $CDB; do kill -9 "$(cat "$D/$db.listen.pid")"; done
sleep 1.5
for db in $WDB $CDB; do
    echo "# (e) $db: listener killed at id $(listen_max $db), state file $(cat "$D/$db.state")"
    start_listener $db
done
tap_ok "$(reached $WDB "$(committed_max $WDB)" 10 && reached $CDB "$(committed_max $CDB)" 10; echo $?)" \
    "(e) the restarted listeners caught up"

# --- (f) a transaction holding an event id 10 s ---------------------------------------------
mark f
for db in $WDB $CDB; do
    sess_open "f$db" $db
    sess_send "f$db" "BEGIN;"
    sess_send "f$db" "SELECT elfsofa.emit_event('chaos.hold', 'held');"
done
H_W=$(sess_line "f$WDB" 1); H_C=$(sess_line "f$CDB" 1)
sleep 9.5
for db in $WDB $CDB; do
    h=$H_W; [ $db = $CDB ] && h=$H_C
    later=$(qt -d $db -c "SELECT count(*) FROM elfsofa.events WHERE id > $h")
    tap_ok "$([ "${later:-0}" -gt 0 ]; echo $?)" "(f) $db: $later events with ids after the held id $h committed while it was held"
    tap_ok "$([ "$(listen_max $db)" -lt "$h" ] && [ "$(poll_max $db)" -lt "$h" ]; echo $?)" \
        "(f) $db: neither consumer was handed an id after $h before it committed (listener at $(listen_max $db), poller at $(poll_max $db))"
done
for db in $WDB $CDB; do sess_send "f$db" "COMMIT;"; sess_close "f$db"; done
sleep 0.5
tap_ok "$(reached $WDB "$(committed_max $WDB)" 10 && reached $CDB "$(committed_max $CDB)" 10; echo $?)" \
    "(f) after the commit the held ids and the later ones arrived"

# --- the end: writers stop, a last event, consumers drain ----------------------------------------
mark end
for db in $WDB $CDB; do qt -d $db -c "UPDATE public.chaos_ctl SET stop = true" >/dev/null; done
for _ in $(seq 1 100); do
    alive=0
    for p in $WPIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
done
tap_is "$alive" 0 "the writers stopped"
for db in $WDB $CDB; do
    last=$(qt -d $db -c "SELECT elfsofa.emit_event('chaos.last', 'last')")
    reached $db "$last" 15 >/dev/null
    kill -TERM "$(cat "$D/$db.listen.pid")"
    touch "$D/$db.poll.stop"
done
for p in $PPIDS; do for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done

# --- the ledger ---------------------------------------------------------------------------------
ledger() {   # ledger <db>: loads what the writers and the listener said, then judges every case
    local db=$1 i=0 lo hi name m prev_name=""
    listen_ids $db >"$D/$db.listen.ids"
    tap_is "$(wc -l <"$D/$db.listen.ids")" "$(wc -l <"$D/$db.listen")" "$db: every line the listener printed is an event"
    cat "$D/$db".writer* | tr ' ' '\n' | grep -E '^[0-9]+$' >"$D/$db.writer.ids"
    qt -d $db -c "CREATE TABLE public.chaos_listened (seq bigserial PRIMARY KEY, id bigint NOT NULL)" \
        -c "CREATE TABLE public.chaos_written (id bigint NOT NULL)" >/dev/null
    qt -d $db -c "\copy public.chaos_listened (id) FROM '$D/$db.listen.ids'" \
        -c "\copy public.chaos_written (id) FROM '$D/$db.writer.ids'" >/dev/null
    tap_is "$(qt -d $db -c "SELECT count(*) FROM public.chaos_written w WHERE NOT EXISTS (SELECT FROM elfsofa.events e WHERE e.id = w.id)")" 0 \
        "$db: every id a writer was told committed ($(wc -l <"$D/$db.writer.ids") ids) is in the outbox"
    set -- $MARKS
    for m in "$@" "tail:999999999999:999999999999"; do
        name=${m%%:*}
        hi=$(echo "$m" | cut -d: -f2); [ $db = $CDB ] && hi=$(echo "$m" | cut -d: -f3)
        if [ -n "$prev_name" ]; then
            for t in chaos_listened chaos_seen; do
                res=$(qt -d $db -c "
                    WITH c AS (SELECT id FROM elfsofa.events WHERE id > $lo AND id <= $hi),
                         s AS (SELECT seq, id, lag(id) OVER (ORDER BY seq) AS prev FROM public.$t),
                         r AS (SELECT * FROM s WHERE id > $lo AND id <= $hi)
                    SELECT (SELECT count(*) FROM c WHERE id NOT IN (SELECT id FROM r)) || ' lost, '
                        || (SELECT count(*) - count(DISTINCT id) FROM r) || ' duplicated, '
                        || (SELECT count(*) FROM r WHERE id <= prev) || ' reordered, '
                        || (SELECT count(*) FROM r WHERE id NOT IN (SELECT id FROM c)) || ' never committed'
                        || ' of ' || (SELECT count(*) FROM c)")
                who=listener; [ $t = chaos_seen ] && who=poller
                tap_is "${res% of *}" "0 lost, 0 duplicated, 0 reordered, 0 never committed" \
                    "($prev_name) $db, $who: ${res##* of } events (ids $lo-$hi) none lost, duplicated, reordered or invented"
            done
        fi
        prev_name=$name; lo=$hi
    done
}
ledger $WDB
ledger $CDB
for db in $WDB $CDB; do
    tap_is "$(qt -d $db -c "SELECT count(*) FROM elfsofa.events WHERE topic = 'chaos.write'
                              AND (key LIKE '%sub' OR substring(key FROM '-([0-9]+)')::int % 11 = 0)")" 0 \
        "$db: no event of a rolled-back transaction or subtransaction is in the outbox"
done
echo "# the chaos run took $(($(date +%s) - T_START)) s"
tap_done
