-- process_order without inventory_updates: main first, then the other
-- locations by name, one line and one ledger row per (sku, location) used;
-- PT409 only when all locations together are short, and then nothing written.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold) VALUES
  ('SPL-A', 'split cover A', 100.00, 0),
  ('SPL-B', 'split cover B', 10.00, 0),
  ('SPL-N', 'never stocked', 1.00, 0);
-- A: 3 at main, 2 at bangkok, 1 at chiangmai; B: 5 at main only; N: no stock row at all
SELECT elfsofa.restock('SPL-A', 3), elfsofa.restock('SPL-A', 2, 'bangkok'), elfsofa.restock('SPL-A', 1, 'chiangmai'),
       elfsofa.restock('SPL-B', 5);
INSERT INTO elfsofa.customers (id, email) VALUES ('11111111-1111-1111-1111-111111111111', 'somchai@example.com');

CREATE TEMP VIEW written AS SELECT
  (SELECT count(*) FROM elfsofa.orders) AS orders,
  (SELECT count(*) FROM elfsofa.order_lines) AS lines,
  (SELECT count(*) FROM elfsofa.stock_ledger) AS ledger,
  (SELECT count(*) FROM elfsofa.events) AS events,
  (SELECT count(*) FROM elfsofa.idempotency_keys) AS keys,
  (SELECT sum(reserved) FROM elfsofa.stock_levels) AS reserved;
CREATE TEMP VIEW stock AS
  SELECT p.sku, s.location, s.on_hand, s.reserved, s.on_hand - s.reserved AS available
    FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id ORDER BY p.sku, s.location;
-- lines, ledger rows and inventory events of one order, side by side
CREATE TEMP VIEW order_rows AS
  SELECT l.order_id, l.sku, l.location, l.quantity, l.line_total, g.delta_reserved AS ledger_reserved,
         e.data->>'available' AS event_available
    FROM elfsofa.order_lines l
    JOIN elfsofa.stock_ledger g ON g.order_id = l.order_id AND g.product_id = l.product_id AND g.location = l.location
    JOIN elfsofa.events e ON e.topic = 'inventory.updated' AND (e.data->>'order_id')::bigint = l.order_id
                         AND e.data->>'sku' = l.sku AND e.data->>'location' = l.location
   ORDER BY l.order_id, l.line_no;

-- 1. the fast path: main alone has enough, one line from main
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-A", "quantity": 2}]}') r;
SELECT * FROM order_rows WHERE order_id = 1;

-- 2. main has 1 left: 3 units take main's 1, then bangkok's 2 (chiangmai comes
--    after bangkok by name and is not needed); B comes from main alone
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-A", "quantity": 3}, {"sku": "SPL-B", "quantity": 1}]}') r;
SELECT * FROM order_rows WHERE order_id = 2;
SELECT * FROM stock;
SELECT data - 'order_id' - 'order_number' - 'customer_id' AS created FROM elfsofa.events
 WHERE topic = 'order.created' AND key = '2';

-- 3. PT409 only when every location together is short; DETAIL has the sku,
--    what is available now (under the lock) and the ordered quantity
SELECT * FROM written;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-A", "quantity": 2}]}');
:err
-- a short sku later in the order: nothing reserved for the earlier one either
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-B", "quantity": 1}, {"sku": "SPL-A", "quantity": 5}]}');
:err
-- a sku without any stock row
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "k-short",
         "items": [{"sku": "SPL-N", "quantity": 1}]}');
:err
-- main alone short while nothing is elsewhere: the message names main
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-B", "quantity": 5}]}');
:err
SELECT * FROM written;
SELECT * FROM stock;

-- 4. the last unit sits at chiangmai, main and bangkok are empty: it is found
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-A", "quantity": 1}]}') r;
SELECT * FROM order_rows WHERE order_id = 3;

-- 5. inventory_updates still pin the location: no spill-over from an explicit location
SELECT elfsofa.restock('SPL-A', 2, 'bangkok');
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "SPL-A", "quantity": 1}]}',
       '[{"sku": "SPL-A", "location": "main", "quantity": 1}]');
:err
SELECT * FROM written;

-- 6. idempotency: a split order replays; the same key naming main explicitly is another request
SELECT elfsofa.restock('SPL-A', 1);
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "k-split",
         "items": [{"sku": "SPL-A", "quantity": 3}]}') r;
SELECT * FROM order_rows WHERE order_id = 4;
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "k-split",
         "items": [{"sku": "SPL-A", "quantity": 3}]}') r;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "k-split",
         "items": [{"sku": "SPL-A", "quantity": 3}]}',
       '[{"sku": "SPL-A", "location": "main", "quantity": 3}]');
:err
SELECT * FROM written;

-- 7. cancelling a split order releases every location it took from
SELECT elfsofa.cancel_order(2, 'split test') ->> 'status' AS status;
SELECT * FROM stock;

-- invariants: lines add up to the items, ledger sums equal the stock rows
SELECT l.order_id, l.sku, sum(l.quantity) AS units, count(*) AS lines
  FROM elfsofa.order_lines l GROUP BY 1, 2 ORDER BY 1, 2;
SELECT p.sku, s.location, s.on_hand = sum(g.delta_on_hand) AS on_hand_ok, s.reserved = sum(g.delta_reserved) AS reserved_ok
  FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id
  JOIN elfsofa.stock_ledger g ON g.product_id = s.product_id AND g.location = s.location
 GROUP BY p.sku, s.location, s.on_hand, s.reserved ORDER BY 1, 2;
