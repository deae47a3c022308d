#!/usr/bin/env bash
# test/scripts/22_orders_last_units_hot.sh — 22_orders_last_units.sh with the
# SKU marked hot (set_stock_buckets, 8 buckets): its last 10 units (6 main, 4
# bangkok) lie one per bucket in 10 of the 16 bucket rows.  256 buyers at once
# get exactly 10 orders and 246 PT409, no other outcome (no deadlock); every
# bucket ends at 0 available, none negative, and the ledger sums to the
# location totals.  On a server of its own (256 clients).
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

rel_own_server 21 last-units-hot last-units <<<"max_connections = 300
shared_buffers = '64MB'"
LU_TMP=$ES_TMP

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('LAST-1', 'the last covers', 990);
SELECT elfsofa.restock('LAST-1', 6), elfsofa.restock('LAST-1', 4, 'bangkok');
SELECT elfsofa.set_stock_buckets('LAST-1', 8);
INSERT INTO elfsofa.customers (email) SELECT 'buyer' || i || '@example.th' FROM generate_series(1, 256) i;
CREATE TABLE outcomes (client int, outcome text);
-- one buyer: the order, or the SQLSTATE it was refused with (any other error escapes)
CREATE FUNCTION buy(c int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE cust uuid;
BEGIN
  SELECT id INTO cust FROM elfsofa.customers WHERE email = 'buyer' || c || '@example.th';
  BEGIN
    PERFORM elfsofa.process_order(jsonb_build_object('customer_id', cust,
              'items', jsonb_build_array(jsonb_build_object('sku', 'LAST-1', 'quantity', 1))));
    INSERT INTO outcomes VALUES (c, 'ordered');
  EXCEPTION WHEN SQLSTATE 'PT409' THEN
    INSERT INTO outcomes VALUES (c, 'PT409');
  END;
END $$;
SQL
tap_ok $? "10 last units (6 main, 4 bangkok), hot with 8 buckets, and 256 buyers"
tap_is "$(q -c "SELECT string_agg(location || ' ' || n, ', ' ORDER BY location) FROM (SELECT location, count(*) FILTER (WHERE on_hand - reserved = 1) AS n FROM elfsofa.stock_levels GROUP BY 1) b")" \
    "bangkok 4, main 6" "one unit per bucket in 10 buckets"

echo 'SELECT buy(:client_id + 1);' >"$LU_TMP/buy.sql"
pgbench -n -c 256 -j 4 -t 1 -f "$LU_TMP/buy.sql" >"$LU_TMP/pgbench.log" 2>&1
rc=$?
grep -E 'number of (transactions actually processed|failed)|aborted|error' "$LU_TMP/pgbench.log" | head -5 | sed 's/^/# /'
tap_is "$rc" 0 "256 simultaneous buyers, no client aborted"
tap_is "$(q -c "SELECT count(*) FROM outcomes")" 256 "every buyer got an answer"
tap_is "$(q -c "SELECT count(*) FROM outcomes WHERE outcome = 'ordered'")" 10 "exactly 10 orders"
tap_is "$(q -c "SELECT count(*) FROM outcomes WHERE outcome = 'PT409'")" 246 "exactly 246 PT409 (insufficient stock)"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.orders")" 10 "10 orders in the table"
tap_is "$(q -c "SELECT elfsofa.available('LAST-1')")" 0 "nothing left available"
tap_is "$(q -c "SELECT string_agg(location || ' ' || h || '/' || r, ', ' ORDER BY location) FROM (SELECT location, sum(on_hand) AS h, sum(reserved) AS r FROM elfsofa.stock_levels GROUP BY 1) s")" \
    "bangkok 4/4, main 6/6" "every unit reserved exactly once, at both locations"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.stock_levels WHERE on_hand - reserved <> 0")" 0 "every bucket at 0 available, none negative"
tap_is "$(q -c "SELECT count(*) FROM (SELECT product_id, location, sum(on_hand)::int AS h, sum(reserved)::int AS r FROM elfsofa.stock_levels GROUP BY 1, 2) s
                 WHERE (s.h, s.r) IS DISTINCT FROM
                       (SELECT ROW(sum(delta_on_hand)::int, sum(delta_reserved)::int) FROM elfsofa.stock_ledger l
                         WHERE l.product_id = s.product_id AND l.location = s.location)")" 0 \
    "the ledger sums to the stock"
tap_is "$(grep -c 'deadlock detected' "$LU_TMP/log/server.log")" 0 "no deadlock"
tap_done
