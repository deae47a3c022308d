#!/usr/bin/env bash
# At the turn of a month maintenance makes the next orders and order_lines
# partitions.  ATTACHing to orders locks the tables that reference it
# (payments, lines) and ATTACHing to lines locks orders, while a shop
# transaction holds orders (order inserted) and then wants payments.  Before
# orders and lines were made in one retry step, maintenance kept payments
# locked while it retried for orders: the shop transaction either died as a
# deadlock victim or waited for all of maintenance's retries, and maintenance
# failed.  Now a lock timeout gives every lock back: the shop waits at most one
# timeout and commits, and maintenance's next try succeeds.
source "$(dirname "$0")/../tap.sh"
DB=es_month_turn
W=$ES_TMP/month-turn
rm -rf "$W"; mkdir -p "$W"

q -c "DROP DATABASE IF EXISTS $DB" >/dev/null
q -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -c "CREATE EXTENSION elfsofa" >/dev/null
# one more month ahead: what maintenance has to make at the turn of a month
q -d $DB -c "UPDATE elfsofa.partition_sets SET premake = premake + 1
              WHERE parent IN ('elfsofa.orders'::regclass, 'elfsofa.order_lines'::regclass)" >/dev/null
before=$(q -d $DB -c "SELECT count(*) FROM pg_inherits
                       WHERE inhparent IN ('elfsofa.orders'::regclass, 'elfsofa.order_lines'::regclass)")
cid=$(q -d $DB -c "INSERT INTO elfsofa.customers (email) VALUES ('month-turn@example.th') RETURNING id")

# the shop transaction, step by step through a fifo: the order first ...
mkfifo "$W/shop"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <"$W/shop" >"$W/shop.out" 2>&1 &
shop=$!
exec 5>"$W/shop"
echo "BEGIN;
INSERT INTO elfsofa.orders (order_number, customer_id, total) VALUES ('ELF-2026-424242', '$cid', 10)
RETURNING id AS oid, created_at AS oat \\gset" >&5
sleep 0.5
# ... maintenance meanwhile (default lock_timeout and retries) ...
psql -X -A -t -q -d $DB -c "SELECT elfsofa.run_maintenance()->>'errors'" >"$W/maint.out" 2>&1 &
maint=$!
sleep 0.7
# ... then the payment, and commit
echo "INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount) VALUES (:oid, :'oat', 'cod', 10);
COMMIT;" >&5
exec 5>&-
wait $shop; shop_rc=$?
wait $maint
sed 's/^/# shop: /' "$W/shop.out"

tap_is "$shop_rc" "0" "the shop transaction (order, then payment) committed next to maintenance"
tap_ok $(grep -q "deadlock" "$W/shop.out" && echo 1 || echo 0) "no deadlock"
tap_is "$(q -d $DB -c "SELECT count(*) FROM elfsofa.payments p JOIN elfsofa.orders o ON o.id = p.order_id
                        WHERE o.order_number = 'ELF-2026-424242'")" "1" "the order and its payment are there"
q -d $DB -c "SELECT '# maintenance: ' || parent || ': ' || last_error FROM elfsofa.partition_sets WHERE last_error IS NOT NULL"
tap_is "$(cat "$W/maint.out")" "0" "maintenance made the next month without an error"
tap_is "$(q -d $DB -c "SELECT count(*) FROM pg_inherits
                        WHERE inhparent IN ('elfsofa.orders'::regclass, 'elfsofa.order_lines'::regclass)")" \
    "$((before + 2))" "one new partition each for orders and order_lines"

q -c "DROP DATABASE $DB" >/dev/null
tap_done
