#!/usr/bin/env bash
# test/scripts/23_orders_number_lock.sh — the short lock under which an order
# takes its id and its number's year (orders/orders.c, next_order_id).  With
# elfsofa preloaded it is an LWLock of ours, which a waiter cannot leave by
# cancel or timeout; so no buyer may ever wait on a heavyweight lock while
# holding it.  A DBA's ALTER SEQUENCE on orders_id_seq, left open in a
# transaction, makes two buyers wait: both must wait on the sequence's lock
# (cancellable), neither on elfsofa_order_number; a cancel ends one at once,
# a statement_timeout the other; after the DBA's COMMIT orders flow again, and
# the numbers stay in id order.  (Without the preload the lock is an
# advisory lock: test/scripts/85_reliability_no_preload.sh.)
source "$(dirname "$0")/../tap.sh"
es_client_env

DB=orders_number_lock
WORK=$ES_TMP/orders_number_lock
mkdir -p "$WORK"
psql -q -X -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('NL-1', 'number lock cover', 500), ('NL-2', 'another cover', 500);
SELECT elfsofa.restock('NL-1', 1000), elfsofa.restock('NL-2', 1000);
INSERT INTO elfsofa.customers (id, email) VALUES ('44444444-4444-4444-4444-444444444444', 'numberlock@example.th');
SQL
tap_ok $? "a shop with two products and one customer"

ORDER="SELECT elfsofa.process_order('{\"customer_id\": \"44444444-4444-4444-4444-444444444444\", \"items\": [{\"sku\": \"NL-1\", \"quantity\": 1}]}') ->> 'order_number'"
tap_is "$(q -d $DB -c "$ORDER" | cut -c1-4)" "ELF-" "an order before the DBA's change gets its number"

# the DBA: ALTER SEQUENCE in a transaction left open (through a fifo)
rm -f "$WORK/dba.in"; mkfifo "$WORK/dba.in"
timeout 120 psql -X -q -d $DB <"$WORK/dba.in" >"$WORK/dba.out" 2>&1 &
DBA_PID=$!
exec {DBA_FD}>"$WORK/dba.in"
echo "BEGIN; ALTER SEQUENCE elfsofa.orders_id_seq CACHE 1; SELECT 'altered';" >&$DBA_FD
for _ in $(seq 1 100); do grep -q altered "$WORK/dba.out" 2>/dev/null && break; sleep 0.1; done
tap_ok "$(grep -q altered "$WORK/dba.out"; echo $?)" "the DBA's ALTER SEQUENCE holds the sequence's lock in an open transaction"

# two buyers of different products (so neither waits on the other's stock
# row): one with a statement_timeout of 30 s (to be cancelled), one with 4 s
PGAPPNAME=nl_buyer_a psql -X -q -A -t -d $DB -c "SET statement_timeout = '30s'" -c "$ORDER" >"$WORK/a.out" 2>&1 &
A_PID=$!
PGAPPNAME=nl_buyer_b psql -X -q -A -t -d $DB -c "SET statement_timeout = '4s'" -c "${ORDER/NL-1/NL-2}" >"$WORK/b.out" 2>&1 &
B_PID=$!
waits() {
    q -d $DB -c "SELECT string_agg(application_name || ':' || coalesce(wait_event_type, '-') || '/' || coalesce(wait_event, '-'), ' ' ORDER BY application_name)
                   FROM pg_stat_activity WHERE application_name LIKE 'nl_buyer_%' AND state = 'active'"
}
for _ in $(seq 1 100); do
    w=$(waits)
    [ "$w" = "nl_buyer_a:Lock/relation nl_buyer_b:Lock/relation" ] && break
    sleep 0.05
done
tap_is "$w" "nl_buyer_a:Lock/relation nl_buyer_b:Lock/relation" \
    "both buyers wait on the sequence's own lock (cancellable), not on elfsofa's order-number lock"
tap_is "$(q -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'elfsofa_order_number'")" 0 \
    "no backend waits on the order-number LWLock"

# a cancel ends buyer a's wait at once
q -d $DB -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'nl_buyer_a'" >/dev/null
for _ in $(seq 1 100); do kill -0 $A_PID 2>/dev/null || break; sleep 0.05; done
tap_ok "$(kill -0 $A_PID 2>/dev/null; [ $? -ne 0 ]; echo $?)" "a cancelled buyer leaves its wait within 5 s"
wait $A_PID
tap_ok "$(grep -q 'canceling statement due to user request' "$WORK/a.out"; echo $?)" "it ends with 'canceling statement due to user request'"
# the other one's statement_timeout fires while the DBA still holds the lock
wait $B_PID
tap_ok "$(grep -q 'canceling statement due to statement timeout' "$WORK/b.out"; echo $?)" "a buyer's statement_timeout ends its wait"

# the DBA commits: orders flow again, numbered in id order
printf 'COMMIT;\n\\q\n' >&$DBA_FD; exec {DBA_FD}>&-
wait $DBA_PID
for i in 1 2 3; do q -d $DB -c "$ORDER" >/dev/null || echo "# order $i failed"; done
tap_is "$(q -d $DB -c "SELECT count(*) FROM elfsofa.orders")" 4 "after the COMMIT orders are placed again (4 in all, none from the stopped buyers)"
tap_is "$(q -d $DB -c "SELECT bool_and(order_number = format('ELF-%s-%s', split_part(order_number, '-', 2), lpad(id::text, 6, '0'))) FROM elfsofa.orders")" \
    "t" "every number carries its own id"

psql -q -X -c "DROP DATABASE IF EXISTS $DB" >/dev/null

tap_done
