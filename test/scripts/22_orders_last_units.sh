#!/usr/bin/env bash
# test/scripts/22_orders_last_units.sh — a flash sale's last units: 256
# buyers at once (one pgbench client each, all connected before the first
# order) for the last 10 units of one SKU, split over two locations.  Exactly
# 10 orders, exactly 246 PT409 "insufficient stock", no other outcome; stock
# ends at 0 available, and the ledger still sums to the stock.  On a server of
# its own: 256 clients need max_connections above make test's 100.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

rel_own_server 19 last-units last-units <<<"max_connections = 300
shared_buffers = '64MB'"
LU_TMP=$ES_TMP

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('LAST-1', 'the last covers', 990);
SELECT elfsofa.restock('LAST-1', 6), elfsofa.restock('LAST-1', 4, 'bangkok');
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
tap_ok $? "10 last units (6 main, 4 bangkok) and 256 buyers"

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
tap_is "$(q -c "SELECT string_agg(location || ' ' || on_hand || '/' || reserved, ', ' ORDER BY location) FROM elfsofa.stock_levels")" \
    "bangkok 4/4, main 6/6" "every unit reserved exactly once, at both locations"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.stock_levels s
                 WHERE (s.on_hand::int, s.reserved::int) IS DISTINCT FROM
                       (SELECT ROW(sum(delta_on_hand)::int, sum(delta_reserved)::int) FROM elfsofa.stock_ledger l
                         WHERE l.product_id = s.product_id AND l.location = s.location)")" 0 \
    "the ledger sums to the stock"
tap_is "$(grep -c 'deadlock detected' "$LU_TMP/log/server.log")" 0 "no deadlock"
tap_done
