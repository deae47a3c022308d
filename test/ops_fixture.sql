-- test/ops_fixture.sql — shared by the ops regression tests (sql/ops_*.sql):
-- monthly partitions back to December 2024, a small catalog and customers with
-- fixed ids, and ops_test_order(), which writes an order and its lines
-- directly at a chosen time (process_order always stamps now()).
SET client_min_messages = warning;
-- partitions in the session's zone, like the ones CREATE EXTENSION made
DO $$
DECLARE m date := '2024-12-01';
BEGIN
    WHILE m < date_trunc('month', now()) + interval '4 months' LOOP
        IF to_regclass('elfsofa.orders_p' || to_char(m, 'YYYY_MM')) IS NULL THEN
            EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.orders FOR VALUES FROM (%L) TO (%L)',
                           'orders_p' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
            EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.order_lines FOR VALUES FROM (%L) TO (%L)',
                           'order_lines_p' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
        END IF;
        m := m + interval '1 month';
    END LOOP;
END $$;
SET timezone = 'Asia/Bangkok';   -- the shop's zone, no DST: day arithmetic stays exact
SET datestyle = 'ISO, YMD';

INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold) VALUES
  ('ELF-1S-SPX-GRY', 'Armchair cover, grey spandex', 590.00, 3),
  ('ELF-2S-SPX-BEI', '2-seat cover, beige spandex', 890.00, 3),
  ('ELF-3S-VEL-GRY', '3-seat cover, grey velvet', 1490.00, 5),
  ('ELF-L-LIN-NVY', 'L-shaped cover, navy linen', 1990.00, 2),
  ('ELF-CUSHION', 'Cushion cover', 150.00, 0);
INSERT INTO elfsofa.customers (id, email, full_name) VALUES
  ('c0000000-0000-4000-8000-000000000001', 'somchai@example.com', 'Somchai Jaidee'),
  ('c0000000-0000-4000-8000-000000000002', 'malee@example.com', 'Malee Srisuk'),
  ('c0000000-0000-4000-8000-000000000003', 'niran@example.com', 'Niran Thongchai'),
  ('c0000000-0000-4000-8000-000000000004', 'ploy@example.com', 'Ploy');

-- items: {"sku": quantity, ...}; lines are numbered in sku order
CREATE OR REPLACE FUNCTION ops_test_order(cust uuid, at timestamptz, st text, items jsonb, loc text DEFAULT 'main')
RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
    oid bigint := nextval('elfsofa.orders_id_seq');
BEGIN
    INSERT INTO elfsofa.orders (id, order_number, customer_id, status, total, created_at, updated_at)
    SELECT oid, format('ELF-%s-%s', to_char(at, 'YYYY'), lpad(oid::text, 6, '0')), cust, st,
           sum(p.price * i.value::int), at, at
      FROM jsonb_each_text(items) i JOIN elfsofa.products p ON p.sku = i.key;
    INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
    SELECT oid, row_number() OVER (ORDER BY p.sku), p.id, p.sku, loc, i.value::int, p.price, p.price * i.value::int, at
      FROM jsonb_each_text(items) i JOIN elfsofa.products p ON p.sku = i.key;
    RETURN oid;
END
$f$;
RESET client_min_messages;
