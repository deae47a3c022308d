-- Hot SKUs: set_stock_buckets splits a product's stock into bucket rows;
-- orders, restock, cancel, ship and return keep every total exact.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price) VALUES ('ELF-HOT', 'flash sale cover', 590.00), ('ELF-COLD', 'plain cover', 100);
SELECT elfsofa.restock('ELF-HOT', 10), elfsofa.restock('ELF-HOT', 3, 'bangkok'), elfsofa.restock('ELF-COLD', 5);
INSERT INTO elfsofa.customers (id, email) VALUES ('11111111-1111-1111-1111-111111111111', 'hot@example.th');

-- the location totals, the ledger's sums beside them, and any negative bucket
CREATE TEMP VIEW hot_stock AS
SELECT p.sku, s.location, count(*) AS buckets, sum(s.on_hand) AS on_hand, sum(s.reserved) AS reserved,
       elfsofa.available(p.sku, s.location) AS available,
       (SELECT sum(delta_on_hand) FROM elfsofa.stock_ledger l WHERE l.product_id = p.id AND l.location = s.location) AS ledger_on_hand,
       (SELECT sum(delta_reserved) FROM elfsofa.stock_ledger l WHERE l.product_id = p.id AND l.location = s.location) AS ledger_reserved,
       count(*) FILTER (WHERE s.on_hand - s.reserved < 0) AS negative
  FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id
 GROUP BY p.id, p.sku, s.location ORDER BY p.sku, s.location <> 'main', s.location;

-- split: every location of the product, free units spread evenly
SELECT elfsofa.set_stock_buckets('ELF-HOT', 4);
SELECT sku, stock_buckets FROM elfsofa.products ORDER BY sku;
SELECT location, bucket, on_hand, reserved FROM elfsofa.stock_levels
 WHERE product_id = (SELECT id FROM elfsofa.products WHERE sku = 'ELF-HOT') ORDER BY location, bucket;
SELECT * FROM hot_stock;
SELECT elfsofa.available('ELF-HOT');

-- orders: one unit from one bucket; 4 units gather over several buckets;
-- 7 take main's last 5 and 2 from bangkok; 2 more, over all locations, is PT409
SELECT r->>'status' AS status FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 1}]}') r;
SELECT r->>'status' AS status FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 4}]}') r;
SELECT * FROM hot_stock;
SELECT r->>'status' AS status FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 7}]}') r;
SELECT location, quantity FROM elfsofa.order_lines WHERE order_id = (SELECT max(id) FROM elfsofa.orders) ORDER BY location <> 'main', location;
SELECT * FROM hot_stock;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 2}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 1}]}',
                             '[{"sku": "ELF-HOT", "location": "bangkok", "quantity": 1}]') - 'order_number';
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-HOT", "quantity": 1}]}',
                             '[{"sku": "ELF-HOT", "location": "main", "quantity": 1}]') - 'order_id' - 'order_number';
:err
SELECT * FROM hot_stock;

-- restock spreads the new units over main's buckets, reserved units on bucket 0
SELECT elfsofa.restock('ELF-HOT', 6);
SELECT bucket, on_hand, reserved FROM elfsofa.stock_levels
 WHERE product_id = (SELECT id FROM elfsofa.products WHERE sku = 'ELF-HOT') AND location = 'main' ORDER BY bucket;

-- adjust_stock of a hot product: the new totals spread over the buckets again;
-- below what is reserved is PT409
SELECT elfsofa.adjust_stock('ELF-HOT', -3, 'main', 'count');
SELECT bucket, on_hand, reserved FROM elfsofa.stock_levels
 WHERE product_id = (SELECT id FROM elfsofa.products WHERE sku = 'ELF-HOT') AND location = 'main' ORDER BY bucket;
SELECT elfsofa.adjust_stock('ELF-HOT', -100, 'main');
:err
SELECT * FROM hot_stock;

-- cancel, ship and return of hot orders
SELECT elfsofa.cancel_order(1)->>'status' AS status;
SELECT elfsofa.set_order_status(2, 'confirmed')->>'status' AS status;
SELECT elfsofa.set_order_status(2, 'packed')->>'status' AS status;
SELECT elfsofa.set_order_status(2, 'shipped')->>'status' AS status;
SELECT elfsofa.set_order_status(2, 'delivered')->>'status' AS status;
SELECT elfsofa.set_order_status(2, 'returned')->>'status' AS status;
SELECT elfsofa.cancel_order(3)->>'status' AS status;
SELECT * FROM hot_stock;
SELECT reason, sum(delta_on_hand) AS on_hand, sum(delta_reserved) AS reserved FROM elfsofa.stock_ledger GROUP BY reason ORDER BY reason;

-- rejections: nothing written
SELECT elfsofa.set_stock_buckets('ELF-HOT', 0);
:err
SELECT elfsofa.set_stock_buckets('ELF-HOT', 65);
:err
SELECT elfsofa.set_stock_buckets('ELF-HOT', NULL);
:err
SELECT elfsofa.set_stock_buckets('NO-SUCH-SKU', 2);
:err
SELECT elfsofa.set_stock_buckets(NULL, 2);
:err
SELECT sku, stock_buckets FROM elfsofa.products ORDER BY sku;

-- back to one row per location: the totals stay
SELECT elfsofa.set_stock_buckets('ELF-HOT', 1);
SELECT * FROM hot_stock;
SELECT elfsofa.set_stock_buckets('ELF-HOT', 2);
SELECT * FROM hot_stock;

-- every inventory.updated event carries the location's totals after its change:
-- on_hand - reserved = available in each, and the last of each location is the stock now
SELECT count(*) AS stock_events,
       count(*) FILTER (WHERE NOT (data ? 'on_hand' AND data ? 'reserved' AND data ? 'available')) AS missing_totals,
       count(*) FILTER (WHERE (data->>'on_hand')::int - (data->>'reserved')::int <> (data->>'available')::int) AS inconsistent,
       array_agg(DISTINCT data->>'reason' ORDER BY data->>'reason') AS reasons
  FROM elfsofa.events WHERE topic = 'inventory.updated';
SELECT h.sku, h.location, h.on_hand, h.reserved, e.data->>'on_hand' AS event_on_hand, e.data->>'reserved' AS event_reserved
  FROM hot_stock h
  LEFT JOIN LATERAL (SELECT data FROM elfsofa.events
                      WHERE topic = 'inventory.updated' AND key = h.sku AND data->>'location' = h.location
                      ORDER BY id DESC LIMIT 1) e ON true
 WHERE h.sku = 'ELF-HOT';
