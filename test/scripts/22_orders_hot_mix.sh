#!/usr/bin/env bash
# test/scripts/22_orders_hot_mix.sh — a hot SKU (8 buckets, 2 locations) with
# little stock, 24 clients for 10 s: orders (automatic and placed, 1-3
# units), cancels, restocks, shipments and returns at once.  Only PT409 may
# refuse anything (no deadlock, no other error); afterwards no bucket is
# negative, the ledger sums to each location's stock, reserved equals what
# open orders hold, and on hand equals restocks - shipments + returns.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

rel_own_server 23 hot-mix hot-mix <<<"shared_buffers = '64MB'"
HM_TMP=$ES_TMP

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('MIX-1', 'flash sale cover', 790), ('MIX-0', 'plain cover', 100);
SELECT elfsofa.restock('MIX-1', 20), elfsofa.restock('MIX-1', 10, 'bangkok'), elfsofa.restock('MIX-0', 100000);
SELECT elfsofa.set_stock_buckets('MIX-1', 8);
INSERT INTO elfsofa.customers (email) SELECT 'mix' || i || '@example.th' FROM generate_series(1, 24) i;
CREATE TABLE refused (op text, sqlstate text);
-- one step of one client; PT409 is the only refusal it swallows (and counts)
CREATE FUNCTION mix_step(c int, r int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE cust uuid; oid bigint; op text;
BEGIN
  SELECT id INTO cust FROM elfsofa.customers WHERE email = 'mix' || c || '@example.th';
  BEGIN
    IF r < 50 THEN
      op := 'order';
      PERFORM elfsofa.process_order(jsonb_build_object('customer_id', cust, 'items',
                jsonb_build_array(jsonb_build_object('sku', 'MIX-1', 'quantity', 1 + r % 3),
                                  jsonb_build_object('sku', 'MIX-0', 'quantity', 1))));
    ELSIF r < 60 THEN
      op := 'placed order';
      PERFORM elfsofa.process_order(jsonb_build_object('customer_id', cust, 'items',
                jsonb_build_array(jsonb_build_object('sku', 'MIX-1', 'quantity', 2))),
              jsonb_build_array(jsonb_build_object('sku', 'MIX-1', 'location', 'main', 'quantity', 1),
                                jsonb_build_object('sku', 'MIX-1', 'location', 'bangkok', 'quantity', 1)));
    ELSIF r < 75 THEN
      op := 'cancel';
      SELECT id INTO oid FROM elfsofa.orders WHERE status IN ('pending', 'confirmed') ORDER BY random() LIMIT 1;
      IF oid IS NOT NULL THEN PERFORM elfsofa.cancel_order(oid, 'mix'); END IF;
    ELSIF r < 85 THEN
      op := 'restock';
      PERFORM elfsofa.restock('MIX-1', 1 + r % 3, CASE WHEN r % 2 = 0 THEN 'main' ELSE 'bangkok' END);
    ELSIF r < 95 THEN
      op := 'ship';
      SELECT id INTO oid FROM elfsofa.orders WHERE status = 'pending' ORDER BY random() LIMIT 1;
      IF oid IS NOT NULL THEN
        PERFORM elfsofa.set_order_status(oid, 'confirmed');
        PERFORM elfsofa.set_order_status(oid, 'packed');
        PERFORM elfsofa.set_order_status(oid, 'shipped');
      END IF;
    ELSE
      op := 'return';
      SELECT id INTO oid FROM elfsofa.orders WHERE status = 'shipped' ORDER BY random() LIMIT 1;
      IF oid IS NOT NULL THEN
        PERFORM elfsofa.set_order_status(oid, 'delivered');
        PERFORM elfsofa.set_order_status(oid, 'returned');
      END IF;
    END IF;
  EXCEPTION WHEN SQLSTATE 'PT409' THEN
    INSERT INTO refused VALUES (op, 'PT409');
  END;
END $$;
SQL
tap_ok $? "a hot SKU with 30 units over 2 locations x 8 buckets, and 24 clients"

printf '\\set r random(0, 99)\nSELECT mix_step(:client_id + 1, :r);\n' >"$HM_TMP/mix.sql"
pgbench -n -c 24 -j 2 -T 10 -f "$HM_TMP/mix.sql" >"$HM_TMP/pgbench.log" 2>&1
rc=$?
grep -E 'number of (transactions actually processed|failed)|aborted|ERROR' "$HM_TMP/pgbench.log" | head -5 | sed 's/^/# /'
tap_is "$rc" 0 "10 s of orders, cancels, restocks, shipments and returns: no client aborted"
tap_is "$(grep -oE 'number of failed transactions: [0-9]+' "$HM_TMP/pgbench.log" | grep -oE '[0-9]+$')" 0 "no transaction failed"
tap_is "$(grep -c 'deadlock detected' "$HM_TMP/log/server.log")" 0 "no deadlock"
echo "# $(q -c "SELECT count(*) || ' orders (' || string_agg(DISTINCT status, ',') || '), ' || (SELECT count(*) FROM refused) || ' PT409' FROM elfsofa.orders")"
tap_ok $([ "$(q -c "SELECT count(*) FROM elfsofa.orders")" -gt 10 ]; echo $?) "orders were placed"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.stock_levels WHERE on_hand - reserved < 0 OR reserved < 0")" 0 "no bucket negative"
tap_is "$(q -c "SELECT count(*) FROM (SELECT product_id, location, sum(on_hand)::int AS h, sum(reserved)::int AS r FROM elfsofa.stock_levels GROUP BY 1, 2) s
                 WHERE (s.h, s.r) IS DISTINCT FROM
                       (SELECT ROW(sum(delta_on_hand)::int, sum(delta_reserved)::int) FROM elfsofa.stock_ledger l
                         WHERE l.product_id = s.product_id AND l.location = s.location)")" 0 \
    "the ledger sums to every location's stock"
tap_is "$(q -c "SELECT count(*) FROM (SELECT product_id, location, sum(reserved)::int AS r FROM elfsofa.stock_levels GROUP BY 1, 2) s
                 WHERE s.r <> (SELECT COALESCE(sum(l.quantity), 0) FROM elfsofa.order_lines l JOIN elfsofa.orders o ON o.id = l.order_id
                                WHERE o.status IN ('pending', 'confirmed', 'packed') AND l.product_id = s.product_id AND l.location = s.location)")" 0 \
    "reserved is what open orders hold, per location"
tap_is "$(q -c "SELECT count(*) FROM (SELECT product_id, location, sum(on_hand)::int AS h FROM elfsofa.stock_levels GROUP BY 1, 2) s
                 WHERE s.h <> (SELECT COALESCE(sum(delta_on_hand) FILTER (WHERE reason = 'restock'), 0)
                                    - COALESCE((SELECT sum(l.quantity) FROM elfsofa.order_lines l JOIN elfsofa.orders o ON o.id = l.order_id
                                                 WHERE o.status IN ('shipped', 'delivered') AND l.product_id = s.product_id AND l.location = s.location), 0)
                                 FROM elfsofa.stock_ledger g WHERE g.product_id = s.product_id AND g.location = s.location)")" 0 \
    "on hand is restocks minus what shipped orders hold (returned ones came back)"
tap_done
