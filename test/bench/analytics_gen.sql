-- test/bench/analytics_gen.sql — 1M orders over the last 13 months, straight
-- into orders/order_lines with set-based SQL (no process_order: this measures
-- the reports, not the writer).  Order g has 1-3 lines of fixed products
-- (line 2 and 3 are near line 1's product, so co-purchases have a shape), a
-- time proportional to g, and 5% are cancelled.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET session_replication_role = replica;   -- bulk load: skip FK checks and change/notification triggers
SET elfsofa.audit_replica_writes = off;    -- and the audit triggers, which fire in replica mode too
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';

INSERT INTO elfsofa.products (id, sku, name, price, low_stock_threshold)
SELECT p, format('B-%s', lpad(p::text, 4, '0')), format('bench cover %s', p), 300 + (p % 20) * 100, 5
  FROM generate_series(1, 200) p;
SELECT elfsofa.restock(format('B-%s', lpad(p::text, 4, '0')), 20 + p % 50) FROM generate_series(1, 200) p \g /dev/null
INSERT INTO elfsofa.customers (id, email)
SELECT ('c0000000-0000-4000-8000-' || lpad(to_hex(c), 12, '0'))::uuid, format('c%s@bench.example', c)
  FROM generate_series(1, 20000) c;

-- monthly partitions back 14 months (the manager keeps the current and future ones)
SELECT format('CREATE TABLE IF NOT EXISTS elfsofa.%I PARTITION OF elfsofa.%I FOR VALUES FROM (%L) TO (%L)',
              t || '_p' || to_char(m, 'YYYY_MM'), t, m, m + interval '1 month')
  FROM generate_series(date_trunc('month', now() - interval '14 months'), date_trunc('month', now()) - interval '1 month', '1 month') m,
       unnest(ARRAY['orders', 'order_lines']) t
 ORDER BY t DESC, m \gexec

CREATE TEMP VIEW gen AS
SELECT g,
       now() - interval '395 days' + (g / 1000000.0) * interval '395 days' - interval '1 minute' AS ts,
       1 + (g % 3 = 0)::int + (g % 7 = 0)::int AS nlines,
       1 + (g * 31) % 200 AS p1,
       1 + ((g * 31) % 200 + 1 + g % 5) % 200 AS p2,
       1 + ((g * 31) % 200 + 7 + g % 3) % 200 AS p3
  FROM generate_series(1, 1000000) g;

INSERT INTO elfsofa.orders (id, order_number, customer_id, status, payment_status, total, created_at, updated_at)
SELECT g, format('ELF-%s-%s', to_char(ts, 'YYYY'), lpad(g::text, 7, '0')),
       ('c0000000-0000-4000-8000-' || lpad(to_hex(1 + g % 20000), 12, '0'))::uuid,
       CASE WHEN g % 20 = 0 THEN 'cancelled' WHEN g % 3 = 0 THEN 'delivered' WHEN g % 3 = 1 THEN 'shipped' ELSE 'confirmed' END,
       CASE WHEN g % 20 = 0 THEN 'unpaid' ELSE 'paid' END,
       (1 + (g + 1) % 2) * (300 + (p1 % 20) * 100)
         + CASE WHEN nlines >= 2 THEN (1 + (g + 2) % 2) * (300 + (p2 % 20) * 100) ELSE 0 END
         + CASE WHEN nlines >= 3 THEN (1 + (g + 3) % 2) * (300 + (p3 % 20) * 100) ELSE 0 END,
       ts, ts
  FROM gen;

INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
SELECT g, j, p, format('B-%s', lpad(p::text, 4, '0')), 'main', q, 300 + (p % 20) * 100, q * (300 + (p % 20) * 100), ts
  FROM gen, LATERAL (VALUES (1, p1), (2, p2), (3, p3)) AS l(j, p), LATERAL (SELECT 1 + (g + j) % 2 AS q) qq
 WHERE j <= nlines;

SELECT setval('elfsofa.orders_id_seq', 1000000) \g /dev/null
RESET session_replication_role;
ANALYZE elfsofa.orders;
ANALYZE elfsofa.order_lines;
ANALYZE elfsofa.products;
ANALYZE elfsofa.customers;
