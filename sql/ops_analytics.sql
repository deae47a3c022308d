-- Analytics: sales_summary, recommend, restock_suggestions, cart_conversion.
\i test/regress_setup.sql
\i test/ops_fixture.sql
\set c1 c0000000-0000-4000-8000-000000000001
\set c2 c0000000-0000-4000-8000-000000000002
\set c3 c0000000-0000-4000-8000-000000000003

-- January and February 2025 (Bangkok time); March is empty
SELECT count(ops_test_order(c, at, st, items)) AS orders FROM (VALUES
  (:'c1'::uuid, '2025-01-01 10:15'::timestamptz, 'delivered', '{"ELF-3S-VEL-GRY": 1, "ELF-CUSHION": 2}'::jsonb),
  (:'c2', '2025-01-01 10:40', 'delivered', '{"ELF-3S-VEL-GRY": 1, "ELF-CUSHION": 4}'),
  (:'c3', '2025-01-01 15:05', 'shipped',   '{"ELF-2S-SPX-BEI": 2}'),
  (:'c1', '2025-01-02 09:00', 'cancelled', '{"ELF-L-LIN-NVY": 3, "ELF-3S-VEL-GRY": 1}'),
  (:'c2', '2025-01-03 20:30', 'returned',  '{"ELF-3S-VEL-GRY": 1, "ELF-L-LIN-NVY": 1}'),
  (:'c3', '2025-01-08 11:00', 'delivered', '{"ELF-1S-SPX-GRY": 1}'),
  (:'c1', '2025-01-31 23:59', 'delivered', '{"ELF-3S-VEL-GRY": 2, "ELF-CUSHION": 1}'),
  (:'c2', '2025-02-01 00:00', 'pending',   '{"ELF-3S-VEL-GRY": 1, "ELF-1S-SPX-GRY": 1}'),
  (:'c3', '2025-02-14 12:00', 'confirmed', '{"ELF-L-LIN-NVY": 1}')
) AS v(c, at, st, items);

-- days, with an empty day (2 Jan: only a cancelled order) reported as zeros
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-01-04');
SELECT * FROM elfsofa.sales_summary('2025-01-01 09:00', '2025-01-01 16:00', 'hour');
-- weeks start on Monday: 30 Dec 2024 holds 1-3 Jan
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-02-01', 'week');
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-04-01', 'month');
-- the upper bound is exclusive: 2025-02-01 00:00 belongs to February
SELECT sum(orders) AS january_orders, sum(revenue) AS january_revenue
  FROM elfsofa.sales_summary('2025-01-01', '2025-02-01', 'month');
-- an empty period: buckets of zeros
SELECT * FROM elfsofa.sales_summary('2025-06-01', '2025-06-03');
SELECT count(*) AS buckets, sum(orders) AS orders FROM elfsofa.sales_summary('2025-06-01', '2025-07-01');

-- partition pruning: a January report reads January's partitions only
-- (table scan counters before and after, flushed to the statistics system in between)
SELECT pg_stat_force_next_flush();
CREATE TEMP TABLE scans_before AS
SELECT relname, seq_scan + COALESCE(idx_scan, 0) AS scans FROM pg_stat_user_tables
 WHERE relname ~ '^(orders|order_lines)_p2025_0[1-3]$';
SELECT sum(orders) AS orders FROM elfsofa.sales_summary('2025-01-05', '2025-01-20');
SELECT pg_stat_force_next_flush();
SELECT s.relname, s.seq_scan + COALESCE(s.idx_scan, 0) > b.scans AS scanned
  FROM pg_stat_user_tables s JOIN scans_before b USING (relname)
 ORDER BY s.relname;

-- rejections
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-02-01', 'year');
:err
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-02-01', 'Day');
:err
SELECT * FROM elfsofa.sales_summary('2025-01-01', '2025-02-01', NULL);
:err
SELECT * FROM elfsofa.sales_summary('2025-02-01', '2025-01-01');
:err
SELECT * FROM elfsofa.sales_summary('2025-02-01', '2025-02-01');
:err
SELECT * FROM elfsofa.sales_summary(NULL, '2025-02-01');
:err
SELECT * FROM elfsofa.sales_summary('-infinity', '2025-02-01');
:err
-- too many buckets, also for the widest finite period (whose width overflows 64 bits)
SELECT * FROM elfsofa.sales_summary('2000-01-01', '2030-01-01', 'hour');
:err
SELECT * FROM elfsofa.sales_summary('4713-01-01 BC', '294276-12-31', 'day');
:err
SELECT * FROM elfsofa.sales_summary('2000-01-01', '2025-02-01', 'hour');
:err

-- recommendations from co-purchases (the window reaches back to these 2025 orders)
SET elfsofa.analytics_recommend_window_days = 3650;
-- ELF-3S-VEL-GRY was in 5 orders that count (the cancelled one does not): cushion in 3, the rest in 1
SELECT * FROM elfsofa.recommend('ELF-3S-VEL-GRY');
SELECT * FROM elfsofa.recommend('ELF-3S-VEL-GRY', 2);
SELECT * FROM elfsofa.recommend('ELF-L-LIN-NVY');
-- bought alone: nothing to recommend
SELECT count(*) FROM elfsofa.recommend('ELF-2S-SPX-BEI');
-- an inactive product is never recommended
UPDATE elfsofa.products SET is_active = false WHERE sku = 'ELF-CUSHION';
SELECT * FROM elfsofa.recommend('ELF-3S-VEL-GRY', 1);
UPDATE elfsofa.products SET is_active = true WHERE sku = 'ELF-CUSHION';
-- outside the window nothing counts
SET elfsofa.analytics_recommend_window_days = 30;
SELECT count(*) FROM elfsofa.recommend('ELF-3S-VEL-GRY');
RESET elfsofa.analytics_recommend_window_days;
SELECT * FROM elfsofa.recommend('ELF-NOPE');
:err
SELECT * FROM elfsofa.recommend(NULL);
:err
SELECT * FROM elfsofa.recommend('ELF-3S-VEL-GRY', 0);
:err
SELECT * FROM elfsofa.recommend('ELF-3S-VEL-GRY', 101);
:err

-- restock suggestions: 28 units of the grey 3-seat sold at main in the last 28 days = 1 a day
SELECT elfsofa.restock('ELF-3S-VEL-GRY', 10, 'main') AS main, elfsofa.restock('ELF-3S-VEL-GRY', 2, 'bangkok') AS bangkok,
       elfsofa.restock('ELF-1S-SPX-GRY', 40, 'main') AS armchair, elfsofa.restock('ELF-2S-SPX-BEI', 1, 'main') AS beige,
       elfsofa.restock('ELF-CUSHION', 500, 'main') AS cushions;
SELECT count(ops_test_order(:'c1', now() - make_interval(days => d), 'delivered', '{"ELF-3S-VEL-GRY": 2, "ELF-CUSHION": 7}')) AS orders
  FROM generate_series(1, 14) AS d;
SELECT ops_test_order(:'c2', now() - interval '2 days', 'cancelled', '{"ELF-3S-VEL-GRY": 50}') IS NOT NULL AS cancelled_order;
SELECT ops_test_order(:'c2', now() - interval '3 days', 'delivered', '{"ELF-L-LIN-NVY": 7}', 'bangkok') IS NOT NULL AS sold_without_stock_row;
-- grey 3-seat: 10 left at 1/day = 10 days; 14 days + threshold 5 - 10 = 9 to order
-- L navy: sold 7 at bangkok (0.25/day), no stock there: 0.25*14 + 2 - 0 = 5.5 -> 6
-- beige: no sales but 1 < threshold 3: 2 to order; cushions sell 3.5/day but 500 cover 142.9 days
SELECT * FROM elfsofa.restock_suggestions();
SELECT sku, location, suggested_quantity FROM elfsofa.restock_suggestions(120) ORDER BY sku, location;
SELECT * FROM elfsofa.restock_suggestions(0);
:err
SELECT * FROM elfsofa.restock_suggestions(366);
:err

-- cart conversion
INSERT INTO elfsofa.carts (customer_id, status, order_id, created_at, updated_at, closed_at) VALUES
  (:'c1', 'checked_out', 1, '2025-01-01 10:00', '2025-01-01 10:14', '2025-01-01 10:15'),
  (:'c2', 'checked_out', 2, '2025-01-01 10:30', '2025-01-01 10:39', '2025-01-01 10:40'),
  (:'c3', 'abandoned', NULL, '2025-01-05 08:00', '2025-01-05 08:05', '2025-01-08 08:05'),
  (:'c3', 'checked_out', 6, '2025-01-08 10:30', '2025-01-08 10:55', '2025-01-08 11:00'),
  (:'c1', 'open', NULL, '2025-01-20 21:00', '2025-01-20 21:00', NULL);
SELECT * FROM elfsofa.cart_conversion('2025-01-01', '2025-02-01');
SELECT * FROM elfsofa.cart_conversion('2025-01-01', '2025-01-02');
SELECT * FROM elfsofa.cart_conversion('2025-03-01', '2025-04-01');
SELECT * FROM elfsofa.cart_conversion('2025-04-01', '2025-03-01');
:err
SELECT * FROM elfsofa.cart_conversion(NULL, '2025-03-01');
:err
