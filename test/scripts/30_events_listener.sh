#!/usr/bin/env bash
# elfsofa-listen under fire: four writers commit (and roll back) events with
# overlapping transactions while the listener is stopped and restarted, and
# its connection is killed; it must print every committed event exactly once.
# Runs twice: in database postgres (the background publisher NOTIFYs) and in
# a second database kept in commit mode (elfsofa.publisher = off there: the
# writers NOTIFY at commit).
source "$(dirname "$0")/../tap.sh"
LISTEN=$ES_BINDIR/elfsofa-listen
OUT=$ES_TMP/listener
mkdir -p "$OUT"

tap_ok "$([ -x "$LISTEN" ]; echo $?)" "elfsofa-listen is installed next to the server binaries"

q -c "DROP DATABASE IF EXISTS elfsofa_listen_commit" -c "CREATE DATABASE elfsofa_listen_commit" >/dev/null
q -d postgres -c "CREATE EXTENSION IF NOT EXISTS elfsofa" >/dev/null
# (the setting first: CREATE EXTENSION's commit would start a publisher)
q -c "ALTER DATABASE elfsofa_listen_commit SET elfsofa.publisher = off" >/dev/null
q -d elfsofa_listen_commit -c "CREATE EXTENSION elfsofa" >/dev/null
for _ in $(seq 1 50); do   # (started by the launcher once CREATE EXTENSION committed)
    [ "$(q -d postgres -c "SELECT elfsofa.publisher_status()->>'mode'")" = worker ] && break
    sleep 0.1
done
tap_is "$(q -d postgres -c "SELECT elfsofa.publisher_status()->>'mode'")" worker "database postgres is served by the background publisher"
tap_is "$(q -d elfsofa_listen_commit -c "SELECT elfsofa.publisher_status()->>'mode'")" commit "a database with elfsofa.publisher = off NOTIFYs at commit"

# writer <db> <n>: 300 transactions; every 7th rolls back, every 5th stays open a while
writer() {
    q -d "$1" -c "
    DO \$\$
    BEGIN
        FOR i IN 1..300 LOOP
            PERFORM elfsofa.emit_event('listen.test', '$2-' || i);
            IF i % 5 = 0 THEN PERFORM pg_sleep(0.02); END IF;
            IF i % 7 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
            PERFORM pg_sleep(0.001);
        END LOOP;
    END
    \$\$;" >/dev/null
}

run_case() {   # run_case <db> <label>
    local db=$1 label=$2 start state=$OUT/$2.state out=$OUT/$2.out err=$OUT/$2.err pid wpids=""
    rm -f "$state" "$out" "$err"
    start=$(q -d "$db" -c "SELECT coalesce(max(id), 0) FROM elfsofa.events")
    PGDATABASE=$db "$LISTEN" --from-id "$start" --state-file "$state" >>"$out" 2>>"$err" &
    pid=$!
    sleep 0.3
    for w in 1 2 3 4; do writer "$db" "$w" & wpids="$wpids $!"; done
    sleep 0.5
    # anyone may NOTIFY the channel: a forged payload must not be printed nor move
    # the listener past real events; an event too big for NOTIFY is read from the table
    q -d "$db" -c "NOTIFY elfsofa_events, '{\"id\": 999999999, \"topic\": \"forged\", \"key\": null, \"data\": {}}'" >/dev/null
    q -d "$db" -c "SELECT elfsofa.emit_event('listen.test', 'big', jsonb_build_object('blob', repeat('x', 9000)))" >/dev/null
    sleep 0.5
    kill -TERM $pid; wait $pid                 # stopped mid-stream ...
    sleep 0.5
    PGDATABASE=$db "$LISTEN" --state-file "$state" >>"$out" 2>>"$err" &   # ... and restarted from its state
    pid=$!
    sleep 1
    # a lost connection: the listener reconnects and catches up
    q -d "$db" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%events_since%' AND pid <> pg_backend_pid()" >/dev/null
    # worker mode: the publisher dies mid-stream; its successor's payloads come from a new pid
    if [ "$label" = worker ]; then
        sleep 0.5
        q -d "$db" -c "SELECT pg_terminate_backend((elfsofa.publisher_status()->>'worker_pid')::int)" >/dev/null
    fi
    wait $wpids
    q -d "$db" -c "SELECT elfsofa.emit_event('listen.test', 'last')" >/dev/null
    local want
    want=$(q -d "$db" -c "SELECT max(id) FROM elfsofa.events WHERE topic = 'listen.test'")
    for _ in $(seq 1 100); do
        [ "$(cat "$state" 2>/dev/null)" = "$want" ] && break
        sleep 0.1
    done
    kill -TERM $pid; wait $pid

    local expected got dups
    expected=$(q -d "$db" -c "SELECT count(*) FROM elfsofa.events WHERE id > $start")
    got=$(wc -l <"$out")
    dups=$(grep -o '^{"id": [0-9]*' "$out" | sort | uniq -d | wc -l)
    tap_is "$expected" 1034 "$label: 4 writers committed 4 x (300 - 42 rolled back) events, one too big for NOTIFY and a last one"
    tap_is "$got" "$expected" "$label: the listener printed one line per committed event"
    tap_is "$dups" 0 "$label: no event printed twice across the restart and the reconnect"
    q -d "$db" -c "SELECT id FROM elfsofa.events WHERE id > $start ORDER BY id" >"$OUT/$label.want"
    grep -o '^{"id": [0-9]*' "$out" | sed 's/.* //' >"$OUT/$label.got"
    tap_ok "$(cmp -s "$OUT/$label.want" "$OUT/$label.got"; echo $?)" "$label: exactly the committed ids, in id order"
    tap_ok "$(grep -q 'connection lost\|events_since failed' "$err"; echo $?)" "$label: the killed connection was noticed (and survived)"
    tap_ok "$(python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$out" 2>/dev/null; echo $?)" "$label: every line is one JSON object"
    tap_is "$(python3 -c '
import json, sys
shapes = set()
for l in open(sys.argv[1]):
    e = json.loads(l)
    shapes.add(",".join(sorted(e)) + (" (big: %d)" % len(e["data"]["blob"]) if e["key"] == "big" else ""))
print(";".join(sorted(shapes)))' "$out")" "data,id,key,topic;data,id,key,topic (big: 9000)" \
        "$label: every line is the payload shape {id, topic, key, data}, the big event complete"
}

run_case postgres worker
for _ in $(seq 1 100); do    # the publisher killed in run_case restarts within 5 s
    [ "$(q -d postgres -c "SELECT last_id = (SELECT max(id) FROM elfsofa.events) FROM elfsofa.event_publisher")" = t ] && break
    sleep 0.1
done
tap_is "$(q -d postgres -c "SELECT last_id = (SELECT max(id) FROM elfsofa.events) FROM elfsofa.event_publisher")" t \
    "worker: the publisher's stored position reached the last event"
run_case elfsofa_listen_commit commit

# worker mode: the publisher also queues the order confirmation, after commit
if [ "$(q -d postgres -c "SELECT to_regproc('elfsofa.process_order') IS NOT NULL")" = t ]; then
    q -d postgres -c "INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold) VALUES ('LISTEN-1', 'listener test cover', 590, 0) ON CONFLICT DO NOTHING" >/dev/null
    q -d postgres -c "SELECT elfsofa.restock('LISTEN-1', 100)" >/dev/null
    cust=$(q -d postgres -c "SELECT elfsofa.upsert_customer('listen@example.co.th')")
    oid=$(q -d postgres -c "SELECT elfsofa.process_order(jsonb_build_object('customer_id', '$cust'::uuid,
                                'items', '[{\"sku\": \"LISTEN-1\", \"quantity\": 1}]'::jsonb))->>'order_id'")
    for _ in $(seq 1 50); do
        n=$(q -d postgres -c "SELECT count(*) FROM elfsofa.notifications WHERE order_id = $oid AND kind = 'order_confirmation'")
        [ "$n" = 1 ] && break
        sleep 0.1
    done
    tap_is "$n" 1 "worker: the publisher queued the order confirmation of order $oid"
fi

# A forged NOTIFY (anyone may NOTIFY the channel) announcing a huge id makes a
# commit-mode listener poll every 5 ms only for a moment, not until restart.
# Its catch-up queries are counted in the server log (log_statement for its
# session only), in a window that starts 3 s after the forgery.
q -d elfsofa_listen_commit -c "SELECT 1" >/dev/null
PGDATABASE=elfsofa_listen_commit PGOPTIONS="-c log_statement=all" PGAPPNAME=elfsofa-listen-forged \
    "$LISTEN" >"$OUT/forged.out" 2>"$OUT/forged.err" &
fpid=$!
sleep 1
lbackend=$(q -d elfsofa_listen_commit -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'elfsofa-listen-forged'")
q -d elfsofa_listen_commit -c "NOTIFY elfsofa_events, '{\"id\": 999999999999, \"topic\": \"forged\", \"key\": null}'" >/dev/null
sleep 3
before=$(grep -c "\[$lbackend\] .*execute elfsofa_listen_since" "$ES_TMP/log/server.log")
sleep 3
after=$(grep -c "\[$lbackend\] .*execute elfsofa_listen_since" "$ES_TMP/log/server.log")
kill -TERM $fpid; wait $fpid
tap_ok "$([ -n "$lbackend" ] && [ $((after - before)) -lt 60 ]; echo $?)" \
    "commit mode: after a forged NOTIFY the listener is back to idle polling ($((after - before)) catch-ups in 3 s; 5 ms polling would be ~600)"

q -c "DROP DATABASE elfsofa_listen_commit" >/dev/null
tap_done
