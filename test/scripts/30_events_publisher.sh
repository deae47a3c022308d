#!/usr/bin/env bash
# The background publisher (database postgres = elfsofa.database): a plain
# LISTEN session receives every committed event once, in id order, with the
# contract's payload (no data by default; with elfsofa.notify_data, the data); nothing for rolled-back work; the short form for an event
# too big for NOTIFY; and when the worker is terminated mid-stream, the
# postmaster restarts it and it resumes from its stored position.
source "$(dirname "$0")/../tap.sh"
OUT=$ES_TMP/publisher
mkdir -p "$OUT"
q -d postgres -c "CREATE EXTENSION IF NOT EXISTS elfsofa" >/dev/null
for _ in $(seq 1 50); do   # (the launcher starts it once CREATE EXTENSION committed)
    pid0=$(q -d postgres -c "SELECT elfsofa.publisher_status()->>'worker_pid'")
    [ -n "$pid0" ] && break
    sleep 0.1
done
tap_ok "$([ -n "$pid0" ]; echo $?)" "the publisher runs (pid $pid0)"

# By default a payload names the event only: anyone who can connect may LISTEN.
( echo "LISTEN elfsofa_events;"; sleep 2; echo "SELECT 1;" ) | psql -X -q -d postgres >"$OUT/listen-default.out" 2>&1 &
lpid=$!
sleep 0.5
id=$(q -d postgres -c "SELECT elfsofa.emit_event('publisher.test', 'private', '{\"customer_id\": \"c-1\", \"total\": 990}')")
wait $lpid
tap_is "$(grep -o 'with payload ".*" received' "$OUT/listen-default.out" | sed 's/^with payload "//; s/" received$//')" \
    "{\"id\": $id, \"topic\": \"publisher.test\", \"key\": \"private\"}" \
    "by default the payload is {id, topic, key}: no data for anyone who can LISTEN"

# The rest runs with elfsofa.notify_data on (the data rides along when it fits).
q -d postgres -c "ALTER SYSTEM SET elfsofa.notify_data = on" -c "SELECT pg_reload_conf()" >/dev/null
trap 'q -d postgres -c "ALTER SYSTEM RESET elfsofa.notify_data" -c "SELECT pg_reload_conf()" >/dev/null' EXIT
sleep 0.5
start=$(q -d postgres -c "SELECT coalesce(max(id), 0) FROM elfsofa.events")

# a LISTEN session that prints what it received after 12 s
( echo "LISTEN elfsofa_events;"; sleep 12; echo "SELECT 1;" ) |
    psql -X -q -d postgres >"$OUT/listen.out" 2>&1 &
lpid=$!
sleep 0.5

emit() { q -d postgres -c "$1" >/dev/null; }
for i in 1 2 3 4 5; do
    emit "SELECT elfsofa.emit_event('publisher.test', 'a$i', jsonb_build_object('n', $i))"
done
# data that exercises the payload's JSON text: escapes, control characters,
# non-ASCII, numbers of every shape, empty and nested containers
cat >"$OUT/tricky.sql" <<'SQL'
SELECT elfsofa.emit_event('publisher.test', E'tricky "key" \\ \t é', $j${"s": "q\"b\\s\n\t\r\b\f\u0001\u001f ü 😀 <>&/", "n": [1, 2.50, -3e5, 0.000001, 12345678901234567890.123, 0],
  "o": {}, "a": [], "b": true, "f": false, "z": null, "": "empty key", "long key with spaces": {"x": [{"y": "z"}, [[]], [null, false]]}}$j$::jsonb
  -- containers of over 32 children: jsonb stores every 32nd child's end offset, the others' lengths
  || (SELECT jsonb_build_object('wide', jsonb_agg(v ORDER BY g), 'wide object', jsonb_object_agg('k' || g, v))
        FROM generate_series(1, 70) g,
             LATERAL (SELECT CASE g % 4 WHEN 0 THEN to_jsonb(g * 1.5) WHEN 1 THEN to_jsonb(repeat('s', g % 23))
                                        WHEN 2 THEN to_jsonb(g % 3 = 0) ELSE jsonb_build_array(g, 'x') END) x(v)));
SQL
q -d postgres -f "$OUT/tricky.sql" >/dev/null
emit "BEGIN; SELECT elfsofa.emit_event('publisher.test', 'rolled-back'); ROLLBACK;"
emit "SELECT elfsofa.emit_event('publisher.test', 'big', jsonb_build_object('blob', repeat('x', 9000)))"
emit "BEGIN; SELECT elfsofa.emit_event('publisher.test', 'b' || g) FROM generate_series(1, 5) g; COMMIT;"
sleep 0.5
q -d postgres -c "SELECT pg_terminate_backend($pid0)" >/dev/null
for i in 1 2 3 4 5; do
    emit "SELECT elfsofa.emit_event('publisher.test', 'c$i')"
done
want=$(q -d postgres -c "SELECT max(id) FROM elfsofa.events")
for _ in $(seq 1 100); do
    [ "$(q -d postgres -c "SELECT last_id FROM elfsofa.event_publisher")" = "$want" ] && break
    sleep 0.1
done
pid1=$(q -d postgres -c "SELECT elfsofa.publisher_status()->>'worker_pid'")
tap_ok "$([ -n "$pid1" ] && [ "$pid1" != "$pid0" ]; echo $?)" "the terminated publisher was restarted (pid $pid1)"
tap_is "$(q -d postgres -c "SELECT last_id FROM elfsofa.event_publisher")" "$want" "its stored position reached the last event"
wait $lpid

grep -o 'with payload ".*" received' "$OUT/listen.out" | sed 's/^with payload "//; s/" received$//' >"$OUT/payloads"
q -d postgres -c "SELECT id FROM elfsofa.events WHERE id > $start ORDER BY id" >"$OUT/want"
python3 - "$OUT/payloads" >"$OUT/got" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["id"])
PY
tap_is "$(wc -l <"$OUT/want")" 17 "17 committed events (5 + 1 awkward + 1 big + 5 in one transaction + 5 while the worker restarted)"
# Exactly once and in id order, except around the restart: an event written in
# the moment no publisher ran is NOTIFYed by its writer at commit, and again by
# the new publisher from its stored position (README: around the switch an
# event may be announced twice, never lost; subscribers drop repeats by id).
restart_ids=$(q -d postgres -c "SELECT string_agg(id::text, ' ' ORDER BY id) FROM elfsofa.events WHERE id > $start AND key LIKE 'c_'")
tap_is "$(python3 - "$OUT/want" "$OUT/got" "$restart_ids" <<'PY'
import sys
want = [int(x) for x in open(sys.argv[1]).read().split()]
got = [int(x) for x in open(sys.argv[2]).read().split()]
restart = set(int(x) for x in sys.argv[3].split())
problems = []
steady = [i for i in got if i not in restart]
if steady != [i for i in want if i not in restart]:
    problems.append("outside the restart got %s" % steady)
if sorted(set(i for i in got if i in restart)) != sorted(restart):
    problems.append("restart events missing: %s" % sorted(restart - set(got)))
if set(got) - set(want):
    problems.append("never committed: %s" % sorted(set(got) - set(want)))
print("; ".join(problems) or "ok")
PY
)" ok "LISTEN received each committed id once, in id order (events written while the publisher restarted: at least once; $(($(wc -l <"$OUT/got") - $(wc -l <"$OUT/want"))) repeated)"
tap_ok "$(grep -q rolled-back "$OUT/payloads"; [ $? -ne 0 ]; echo $?)" "nothing for the rolled-back event"
tap_is "$(python3 -c '
import json, sys
keys = set()
for line in open(sys.argv[1]):
    p = json.loads(line)
    keys.add(",".join(sorted(p)) + ("" if p.get("key") != "big" else " (big)"))
print(";".join(sorted(keys)))' "$OUT/payloads")" "data,id,key,topic;id,key,topic,truncated (big)" \
    "payloads are {id, topic, key, data}; the big one {id, topic, key, truncated}"
tap_is "$(grep -c '"key": "a1", "data": {"n": 1}' "$OUT/payloads")" 1 "the data travels in the payload"
tap_is "$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if (json.loads(line).get("key") or "").startswith("tricky"):
        print(line, end="")' "$OUT/payloads")" \
    "$(q -d postgres -c "SELECT '{\"id\": ' || id || ', \"topic\": \"publisher.test\", \"key\": ' || to_json(key)::text || ', \"data\": ' || data::text || '}' FROM elfsofa.events WHERE id > $start AND key LIKE 'tricky%'")" \
    "the payload's key and data are the text to_json and jsonb_out give, escapes and all"

# The watermark: only a transaction that took a smaller event id holds events
# back (it could still commit it); one that merely holds an xid does not, in
# this database or another.
hold() {   # hold <db> <sql>: a transaction that ran <sql>, open for 3 s
    psql -X -q -d "$1" -c "BEGIN" -c "$2" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
    HOLD=$!
    sleep 0.5
}
since_count() { q -d postgres -c "SELECT count(*) FROM elfsofa.events_since($1)"; }
q -c "DROP DATABASE IF EXISTS elfsofa_other" -c "CREATE DATABASE elfsofa_other" >/dev/null
base=$(q -d postgres -c "SELECT max(id) FROM elfsofa.events")
hold elfsofa_other "SELECT pg_current_xact_id()"
emit "SELECT elfsofa.emit_event('publisher.test', 'other-db')"
tap_is "$(since_count "$base")" 1 "a transaction open in another database does not hold events back"
wait $HOLD
base=$(q -d postgres -c "SELECT max(id) FROM elfsofa.events")
hold postgres "SELECT pg_current_xact_id()"
emit "SELECT elfsofa.emit_event('publisher.test', 'same-db-xid')"
tap_is "$(since_count "$base")" 1 "a transaction of this database with an xid but no event id does not hold events back"
wait $HOLD
base=$(q -d postgres -c "SELECT max(id) FROM elfsofa.events")
hold postgres "SELECT elfsofa.emit_event('publisher.test', 'same-db-held')"
emit "SELECT elfsofa.emit_event('publisher.test', 'same-db')"
tap_is "$(since_count "$base")" 0 "a transaction holding a smaller event id holds later events back"
wait $HOLD
tap_is "$(since_count "$base")" 2 "... and releases them, in order, when it ends"
q -c "DROP DATABASE elfsofa_other" >/dev/null

# The worker reports its table statistics: the notification rows it queues count
# in pg_stat_user_tables, so autovacuum sees the queue grow.
cust=$(q -d postgres -c "SELECT elfsofa.upsert_customer('publisher-stats@example.co.th', 'Stats')")
ins0=$(q -d postgres -c "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'elfsofa.notifications'::regclass")
# (990001 as process_order writes it: items, left out of the payload; 990002 with
# another nested value, 990003 naming a customer_name that the queue replaces)
emit "SELECT elfsofa.emit_event('order.created', (990000 + g)::text, jsonb_build_object('order_id', 990000 + g, 'customer_id', '$cust', 'total', 10)
        || CASE g WHEN 1 THEN '{\"items\": [{\"sku\": \"S-1\", \"quantity\": 1}]}'::jsonb
                  WHEN 2 THEN '{\"shipping\": {\"city\": \"Chiang Mai\"}}'::jsonb
                  ELSE '{\"customer_name\": \"Forged\", \"note\": \"x\"}'::jsonb END)
      FROM generate_series(1, 3) g"
for _ in $(seq 1 60); do
    ins1=$(q -d postgres -c "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = 'elfsofa.notifications'::regclass")
    [ "$ins1" -ge $((ins0 + 3)) ] && break
    sleep 0.1
done
tap_is "$(q -d postgres -c "SELECT count(*) FROM elfsofa.notifications WHERE order_id BETWEEN 990001 AND 990003")" 3 \
    "the publisher queued a confirmation for each order.created"
tap_ok "$([ "$ins1" -ge $((ins0 + 3)) ]; echo $?)" "its inserts reach pg_stat_user_tables (n_tup_ins $ins0 -> $ins1)"
tap_is "$(q -d postgres -c "SELECT string_agg((payload = jsonb_build_object('order_id', order_id, 'customer_id', '$cust', 'total', 10, 'customer_name', 'Stats')
                                                || CASE order_id WHEN 990002 THEN '{\"shipping\": {\"city\": \"Chiang Mai\"}}'::jsonb
                                                                 WHEN 990003 THEN '{\"note\": \"x\"}'::jsonb ELSE '{}' END)::text, ',' ORDER BY order_id)
                              FROM elfsofa.notifications WHERE order_id BETWEEN 990001 AND 990003")" "true,true,true" \
    "each payload is the event data without items, with order_id and the customer's name"
q -d postgres -c "DELETE FROM elfsofa.notifications WHERE order_id BETWEEN 990001 AND 990003" >/dev/null

# The publisher finds each recipient as the single-row queue statement does:
# the preferred channel when it has an address (SMS falls back to the phone),
# else the e-mail (a preferred e-mail address first); a customer who does not
# exist gets nothing; an order already queued is not queued twice.
cust_for() {  # cust_for <n> <phone or NULL> <channel or -> <address or NULL>
    local c
    c=$(q -d postgres -c "SELECT elfsofa.upsert_customer('recipient$1@example.co.th', 'R$1', $2)")
    [ "$3" != - ] && q -d postgres -c "INSERT INTO elfsofa.notification_preferences (customer_id, channel, address) VALUES ('$c', '$3', $4)" >/dev/null
    echo "$c"
}
rc1=$(cust_for 1 NULL - NULL)
rc2=$(cust_for 2 NULL line "'U123'")
rc3=$(cust_for 3 "'+66 80 000 0003'" line NULL)
rc4=$(cust_for 4 "'+66 80 000 0004'" sms NULL)
rc5=$(cust_for 5 NULL sms NULL)
rc6=$(cust_for 6 NULL email "'alt6@example.co.th'")
rc7=$(cust_for 7 "'+66 80 000 0007'" sms "'+66 89 999 0007'")
emit "SELECT elfsofa.emit_event('order.created', (991000 + n)::text, jsonb_build_object('order_id', 991000 + n, 'customer_id', c))
        FROM (VALUES (1, '$rc1'), (2, '$rc2'), (3, '$rc3'), (4, '$rc4'), (5, '$rc5'), (6, '$rc6'), (7, '$rc7'),
                     (8, 'aaaaaaaa-0000-4000-8000-000000000008'), (1, '$rc1')) v(n, c)"
want=$(q -d postgres -c "SELECT max(id) FROM elfsofa.events")
for _ in $(seq 1 100); do
    [ "$(q -d postgres -c "SELECT last_id FROM elfsofa.event_publisher")" = "$want" ] && break
    sleep 0.1
done
tap_is "$(q -d postgres -c "SELECT string_agg((order_id - 991000) || ' ' || channel || ' ' || recipient, ', ' ORDER BY order_id)
                              FROM elfsofa.notifications WHERE order_id BETWEEN 991001 AND 991008")" \
    "1 email recipient1@example.co.th, 2 line U123, 3 email recipient3@example.co.th, 4 sms +66 80 000 0004, 5 email recipient5@example.co.th, 6 email alt6@example.co.th, 7 sms +66 89 999 0007" \
    "each confirmation goes to the customer's preferred channel and address; none for an unknown customer, one per order"
tap_done
