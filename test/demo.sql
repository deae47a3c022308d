-- test/demo.sql — the shop's day, run by `make demo` against a fresh database.
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
SET elfsofa.actor = 'demo';

\echo
\echo '== ELF SofaCover Pro: catalog'
INSERT INTO elfsofa.categories (slug, name) VALUES
  ('1-seat', 'Armchair & 1-seat covers'), ('2-seat', '2-seat sofa covers'),
  ('3-seat', '3-seat sofa covers'), ('l-shape', 'L-shaped sofa covers');

INSERT INTO elfsofa.products (sku, name, price, category_id, seat_size, colour, material, low_stock_threshold)
SELECT format('ELF-%s-%s-%s', s.code, m.code, c.code),
       format('%s cover, %s %s', s.label, c.label, m.label),
       s.base + m.extra,
       (SELECT id FROM elfsofa.categories WHERE slug = s.slug),
       s.size, c.label, m.label, 3
  FROM (VALUES ('1S', '1-seat', '1-seat', 'Armchair', 590.00),
               ('2S', '2-seat', '2-seat', '2-seat', 890.00),
               ('3S', '3-seat', '3-seat', '3-seat', 1190.00),
               ('L',  'l-shape', 'l-shape', 'L-shaped', 1790.00)) AS s(code, slug, size, label, base)
 CROSS JOIN (VALUES ('SPX', 'stretch spandex', 0.00), ('VEL', 'velvet', 300.00), ('LIN', 'linen', 200.00)) AS m(code, label, extra)
 CROSS JOIN (VALUES ('GRY', 'grey'), ('BEI', 'beige'), ('NVY', 'navy')) AS c(code, label);

SELECT elfsofa.restock(sku, 5 + (id % 7)::int * 3, 'main', 'opening stock') FROM elfsofa.products WHERE sku <> 'ELF-L-VEL-GRY' ORDER BY id \g /dev/null
SELECT elfsofa.restock(sku, 2 + (id % 4)::int, 'bangkok', 'opening stock') FROM elfsofa.products WHERE id % 2 = 0 AND sku <> 'ELF-L-VEL-GRY' ORDER BY id \g /dev/null
-- the season's bestseller: only the last batch is left
SELECT elfsofa.restock('ELF-L-VEL-GRY', 5, 'main', 'last batch of the season') \g /dev/null

SELECT c.name AS category, p.sku, p.material, p.colour, to_char(p.price, 'FM999,990.00') AS "price (THB)"
  FROM elfsofa.products p JOIN elfsofa.categories c ON c.id = p.category_id
 ORDER BY c.id, p.price, p.sku;

\echo '== stock by location (available = on hand - reserved)'
SELECT p.sku,
       COALESCE(max(sl.on_hand) FILTER (WHERE sl.location = 'main'), 0) AS main,
       COALESCE(max(sl.on_hand) FILTER (WHERE sl.location = 'bangkok'), 0) AS bangkok,
       elfsofa.available(p.sku) AS available
  FROM elfsofa.products p LEFT JOIN elfsofa.stock_levels sl ON sl.product_id = p.id
 GROUP BY p.id, p.sku ORDER BY p.id;

\echo '== customers'
SELECT elfsofa.upsert_customer('somchai@example.co.th', 'Somchai Jaidee', '+66 81 234 5678') \g /dev/null
SELECT elfsofa.upsert_customer('malee@example.co.th', 'Malee Srisuk', '089-765-4321') \g /dev/null
SELECT elfsofa.upsert_customer('niran@example.co.th', 'Niran Thongchai') \g /dev/null
SELECT email, full_name, phone FROM elfsofa.customers ORDER BY created_at, email;

\echo '== stock ledger (last 5 rows)'
SELECT l.id, p.sku, l.location, l.delta_on_hand, l.reason, l.actor, l.note
  FROM elfsofa.stock_ledger l JOIN elfsofa.products p ON p.id = l.product_id
 ORDER BY l.id DESC LIMIT 5;

-- ===================================================================
-- The shop's day
-- ===================================================================
SELECT elfsofa.upsert_customer(format('buyer%s@example.co.th', i), format('Rush buyer %s', i)) FROM generate_series(1, 12) AS i \g /dev/null
SELECT id AS somchai FROM elfsofa.customers WHERE email = 'somchai@example.co.th' \gset
SELECT id AS malee FROM elfsofa.customers WHERE email = 'malee@example.co.th' \gset
SELECT id AS niran FROM elfsofa.customers WHERE email = 'niran@example.co.th' \gset
SELECT elfsofa.log('info', 'shop opened', jsonb_build_object('products', count(*))) FROM elfsofa.products \g /dev/null

\echo
\echo '== 09:00  morning orders (process_order: catalog prices, stock reserved, events in the outbox)'
SELECT r->>'order_number' AS order_number, r->>'status' AS status, r->>'total' AS "total (THB)", r->>'replayed' AS replayed
  FROM (VALUES
    (elfsofa.process_order(jsonb_build_object('customer_id', :'somchai', 'idempotency_key', 'web-0901',
        'items', '[{"sku": "ELF-3S-SPX-GRY", "quantity": 1}, {"sku": "ELF-1S-SPX-GRY", "quantity": 2}]'::jsonb),
        NULL, '{"method": "promptpay", "amount": 2370.00, "provider": "omise", "provider_ref": "chrg_0901"}')),
    (elfsofa.process_order(jsonb_build_object('customer_id', :'malee', 'idempotency_key', 'web-0915',
        'items', '[{"sku": "ELF-2S-VEL-BEI", "quantity": 1}]'::jsonb), NULL, '{"method": "cod", "amount": 1190.00}')),
    (elfsofa.process_order(jsonb_build_object('customer_id', :'niran', 'idempotency_key', 'line-0930',
        'items', '[{"sku": "ELF-L-LIN-NVY", "quantity": 1}, {"sku": "ELF-1S-LIN-NVY", "quantity": 1}]'::jsonb))),
    -- the mobile app retries the first request after a timeout: same key, same answer
    (elfsofa.process_order(jsonb_build_object('customer_id', :'somchai', 'idempotency_key', 'web-0901',
        'items', '[{"sku": "ELF-3S-SPX-GRY", "quantity": 1}, {"sku": "ELF-1S-SPX-GRY", "quantity": 2}]'::jsonb),
        NULL, '{"method": "promptpay", "amount": 2370.00, "provider": "omise", "provider_ref": "chrg_0901"}'))
  ) AS t(r);

\echo '== 10:00  a shopper fills a cart, changes her mind, checks out'
SELECT elfsofa.cart_add(:'malee', 'ELF-3S-VEL-NVY', 1) ->> 'total' AS "cart total" \g /dev/null
SELECT elfsofa.cart_add(:'malee', 'ELF-2S-LIN-BEI', 2) ->> 'total' AS "cart total" \g /dev/null
SELECT elfsofa.cart_remove(:'malee', 'ELF-2S-LIN-BEI', 1) ->> 'total' AS "cart total" \g /dev/null
SELECT i->>'sku' AS sku, i->>'quantity' AS qty, i->>'line_total' AS line_total
  FROM jsonb_array_elements(elfsofa.cart_get(:'malee') -> 'items') i;
SELECT r->>'order_number' AS order_number, r->>'total' AS total, r->>'cart_id' AS cart_id
  FROM elfsofa.cart_checkout(:'malee', '{"method": "card", "amount": 2580.00, "provider": "omise", "provider_ref": "chrg_1002"}') AS r;
-- another shopper leaves a cart behind (it is abandoned later and counts in conversion)
SELECT elfsofa.cart_add(:'niran', 'ELF-3S-SPX-BEI', 1) \g /dev/null
SELECT elfsofa.record_interaction(:'niran', 'question', 'line', '{"text": "Is the beige 3-seat cover washable?"}') \g /dev/null

\echo '== 12:00  lunchtime rush: 12 buyers at once on the last grey velvet L-shaped covers'
SELECT sku, elfsofa.available(sku) AS available_before FROM elfsofa.products WHERE sku = 'ELF-L-VEL-GRY';
\! bash test/demo_rush.sh ELF-L-VEL-GRY 12
SELECT p.sku, sum(sl.on_hand) AS on_hand, sum(sl.reserved) AS reserved, elfsofa.available(p.sku) AS available_after,
       (SELECT count(*) FROM elfsofa.stock_ledger l WHERE l.product_id = p.id AND l.reason = 'reserve') AS reserve_ledger_rows
  FROM elfsofa.products p JOIN elfsofa.stock_levels sl ON sl.product_id = p.id
 WHERE p.sku = 'ELF-L-VEL-GRY' GROUP BY p.id, p.sku;

\echo '== 14:00  the warehouse works through the orders; one customer cancels'
SELECT id AS first_order FROM elfsofa.orders WHERE idempotency_key = 'web-0901' \gset
SELECT id AS cod_order FROM elfsofa.orders WHERE idempotency_key = 'web-0915' \gset
SELECT id AS line_order FROM elfsofa.orders WHERE idempotency_key = 'line-0930' \gset
SELECT elfsofa.record_payment(:first_order, '{"method": "promptpay", "amount": 2370.00, "provider": "omise", "provider_ref": "chrg_0901", "status": "captured"}') \g /dev/null
SELECT s.step, r->>'status' AS status
  FROM (VALUES (1, elfsofa.set_order_status(:first_order, 'confirmed', 'paid by PromptPay')),
               (2, elfsofa.set_order_status(:first_order, 'packed')),
               (3, elfsofa.set_order_status(:first_order, 'shipped', 'Kerry TH123456789')),
               (4, elfsofa.set_order_status(:cod_order, 'confirmed'))) AS s(step, r)
 ORDER BY s.step;
SELECT elfsofa.cancel_order(:line_order, 'customer found a cheaper sofa') ->> 'status' AS line_order_now;
SELECT sku, elfsofa.available(sku) AS available_again FROM elfsofa.products WHERE sku IN ('ELF-L-LIN-NVY', 'ELF-1S-LIN-NVY') ORDER BY sku;
SELECT o.order_number, c.full_name, o.status, o.payment_status, o.total
  FROM elfsofa.orders o JOIN elfsofa.customers c ON c.id = o.customer_id
 WHERE c.email NOT LIKE 'buyer%' ORDER BY o.id;
SELECT elfsofa.log('warn', 'order cancelled', jsonb_build_object('order_id', :line_order)) \g /dev/null

\echo '== events in the outbox today (subscribers: elfsofa-listen, consumer_poll)'
SELECT topic, count(*) AS events FROM elfsofa.events GROUP BY topic ORDER BY topic;
SELECT kind, channel, status, count(*) FROM elfsofa.notifications GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

\echo '== 23:00  night jobs: abandoned carts, partition maintenance, archiving'
-- a log partition from last season that retention should have moved out, and an old CRM note
SELECT format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.system_logs FOR VALUES FROM (%L) TO (%L)',
              'system_logs_p' || to_char(d, 'YYYY_MM_DD'), d, d + 1)
  FROM (SELECT (current_date - 120) AS d) x \gexec
INSERT INTO elfsofa.system_logs (created_at, level, message) VALUES (now() - interval '120 days', 'info', 'last season''s log line');
INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel, body, created_at)
VALUES (:'somchai', 'note', 'phone', '{"text": "asked about cat-proof fabric"}', now() - interval '3 years');
UPDATE elfsofa.carts SET updated_at = now() - interval '4 days' WHERE customer_id = :'niran' AND status = 'open';
\echo '-- health before the night run'
SELECT c->>'name' AS check, c->>'status' AS status, c->>'detail' AS detail
  FROM jsonb_array_elements(elfsofa.health() -> 'checks') c WHERE c->>'status' NOT IN ('ok', 'skipped');
SELECT elfsofa.abandon_carts() AS carts_abandoned;
SELECT s->>'parent' AS partition_set, s->'created' AS created, s->'retired' AS retired
  FROM jsonb_array_elements(elfsofa.run_maintenance() -> 'sets') s;
SELECT elfsofa.archive_rows('elfsofa.customer_interactions', 'created_at', '2 years') AS interactions_archived;
SELECT table_schema, table_name FROM information_schema.tables
 WHERE table_schema = 'elfsofa_archive' ORDER BY 2;

\echo '== insights'
SELECT i->>'full_name' AS customer, i->>'orders' AS orders, i->>'lifetime_value' AS ltv, i->'rfm'->>'segment' AS segment,
       (SELECT string_agg(f->>'sku', ', ') FROM jsonb_array_elements(i->'favourite_products') f) AS favourites
  FROM elfsofa.customers c, elfsofa.customer_insights(c.id) i WHERE c.email NOT LIKE 'buyer%' ORDER BY c.email;
\echo '-- bought together with ELF-3S-SPX-GRY'
SELECT * FROM elfsofa.recommend('ELF-3S-SPX-GRY');
\echo '-- restock suggestions (14-day horizon)'
SELECT * FROM elfsofa.restock_suggestions() LIMIT 8;
\echo '-- the buyer orders what the suggestions say for the sold-out bestseller'
SELECT sku, location, elfsofa.restock(sku, suggested_quantity, location, 'night order from the supplier') AS on_hand
  FROM elfsofa.restock_suggestions() WHERE sku = 'ELF-L-VEL-GRY';
\echo '-- carts today'
SELECT * FROM elfsofa.cart_conversion(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');

\echo
\echo '== closing: health()'
SELECT elfsofa.health() ->> 'status' AS "shop health";
SELECT c->>'name' AS check, c->>'status' AS status, c->>'detail' AS detail
  FROM jsonb_array_elements(elfsofa.health() -> 'checks') c;
\echo '== closing: sales_summary for today by hour (cancelled orders excluded)'
SELECT to_char(bucket, 'HH24:MI') AS hour, orders, units, revenue, avg_order_value
  FROM elfsofa.sales_summary(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day', 'hour')
 WHERE orders > 0;
SELECT sum(orders) AS orders_today, sum(units) AS units_today, sum(revenue) AS "revenue today (THB)"
  FROM elfsofa.sales_summary(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
\echo '-- metrics() for a Prometheus scraper (first lines)'
SELECT l AS metrics FROM regexp_split_to_table(elfsofa.metrics(), E'\n') l WHERE l !~ '^#' LIMIT 12;
