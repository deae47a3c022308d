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

SELECT elfsofa.restock(sku, 5 + (id % 7)::int * 3, 'main', 'opening stock') FROM elfsofa.products ORDER BY id \g /dev/null
SELECT elfsofa.restock(sku, 2 + (id % 4)::int, 'bangkok', 'opening stock') FROM elfsofa.products WHERE id % 2 = 0 ORDER BY id \g /dev/null

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
