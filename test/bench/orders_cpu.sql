-- test/bench/orders_cpu.sql — CPU cost per order, independent of how busy the
-- machine is: bench.cpu_run() places n orders, one transaction each, with the
-- chosen implementation (elfsofa, plpgsql, plain, floor); bench_orders.sh
-- reads the backend's CPU time (/proc/<pid>/stat) before and after.  Same order shape as the pgbench
-- scripts: a random customer, two distinct SKUs (1 + 2 units).
CREATE OR REPLACE PROCEDURE bench.cpu_run(impl text, n int, nsku int)
LANGUAGE plpgsql AS $$
DECLARE
  c int; s1 int; s2 int; od jsonb; r jsonb;
BEGIN
  FOR i IN 1 .. n LOOP
    c := 1 + floor(random() * 1000)::int;
    s1 := 1 + floor(random() * nsku)::int;
    s2 := s1 % nsku + 1;
    IF impl = 'floor' THEN
      WITH items(sku, q) AS (VALUES ('B-' || s1, 1), ('B-' || s2, 2)),
      p AS (SELECT pr.id, pr.sku, pr.price, i.q FROM items i JOIN elfsofa.products pr ON pr.sku = i.sku),
      lk AS (SELECT sl.product_id, p.q FROM elfsofa.stock_levels sl JOIN p ON sl.product_id = p.id
              WHERE sl.location = 'main' ORDER BY sl.product_id FOR UPDATE OF sl),
      s AS (UPDATE elfsofa.stock_levels sl SET reserved = sl.reserved + lk.q, updated_at = now() FROM lk
             WHERE sl.product_id = lk.product_id AND sl.location = 'main' AND sl.on_hand - sl.reserved >= lk.q
            RETURNING sl.product_id, sl.on_hand - sl.reserved AS avail),
      nx AS (SELECT nextval('elfsofa.orders_id_seq') AS id),
      o AS (INSERT INTO elfsofa.orders (id, order_number, customer_id, total)
            SELECT nx.id, 'ELF-' || to_char(now(), 'YYYY') || '-' || lpad(nx.id::text, greatest(6, length(nx.id::text)), '0'),
                   md5('c' || c)::uuid, (SELECT sum(price * q) FROM p) FROM nx
            RETURNING id, order_number, created_at, status, total, customer_id),
      l AS (INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
            SELECT o.id, row_number() OVER (ORDER BY p.id), p.id, p.sku, 'main', p.q, p.price, p.price * p.q, o.created_at FROM o, p),
      g AS (INSERT INTO elfsofa.stock_ledger (product_id, location, delta_reserved, reason, order_id, actor)
            SELECT p.id, 'main', p.q, 'reserve', o.id, current_user FROM o, p),
      e AS (INSERT INTO elfsofa.events (topic, key, data)
            SELECT 'order.created', o.id::text,
                   jsonb_build_object('order_id', o.id, 'order_number', o.order_number, 'customer_id', o.customer_id,
                                      'status', o.status, 'total', o.total, 'currency', 'THB', 'payment_status', 'unpaid',
                                      'items', (SELECT jsonb_agg(jsonb_build_object('sku', p.sku, 'location', 'main', 'quantity', p.q,
                                                                                    'unit_price', p.price) ORDER BY p.id) FROM p))
              FROM o
            UNION ALL
            SELECT 'inventory.updated', p.sku,
                   jsonb_build_object('sku', p.sku, 'location', 'main', 'available', s.avail, 'delta_reserved', p.q,
                                      'reason', 'reserve', 'order_id', o.id)
              FROM o, p JOIN s ON s.product_id = p.id)
      SELECT jsonb_build_object('order_id', o.id, 'order_number', o.order_number, 'status', o.status, 'total', o.total,
                                'currency', 'THB', 'replayed', false) INTO r FROM o;
    ELSE
      od := jsonb_build_object('customer_id', md5('c' || c)::uuid,
                               'items', jsonb_build_array(jsonb_build_object('sku', 'B-' || s1, 'quantity', 1),
                                                          jsonb_build_object('sku', 'B-' || s2, 'quantity', 2)));
      IF impl = 'elfsofa' THEN
        r := elfsofa.process_order(od);
      ELSIF impl = 'plain' THEN
        r := plainshop.process_order(od);
      ELSE
        r := bench.process_order(od);
      END IF;
    END IF;
    COMMIT;
  END LOOP;
END $$;
