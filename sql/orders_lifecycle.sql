-- Order lifecycle: set_order_status, cancel_order, the status trigger, and
-- expire_unpaid_orders, with their stock effects through the ledger.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price) VALUES ('ELF-3S-GRY', '3-seat cover, grey', 1000), ('ELF-L-BLU', 'L-shape cover, blue', 2000);
SELECT elfsofa.restock('ELF-3S-GRY', 10), elfsofa.restock('ELF-L-BLU', 10), elfsofa.restock('ELF-L-BLU', 5, 'bangkok');
INSERT INTO elfsofa.customers (id, email) VALUES ('11111111-1111-1111-1111-111111111111', 'somchai@example.com');

CREATE TEMP VIEW stock AS
  SELECT p.sku, s.location, s.on_hand, s.reserved, s.on_hand - s.reserved AS available
    FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id ORDER BY p.sku, s.location;
CREATE TEMP VIEW written AS SELECT
  (SELECT count(*) FROM elfsofa.stock_ledger) AS ledger,
  (SELECT count(*) FROM elfsofa.events) AS events,
  (SELECT string_agg(id || ':' || status, ' ' ORDER BY id) FROM elfsofa.orders) AS orders;

-- order 1: grey x2 (main) + blue x3 (2 main, 1 bangkok); order 2: grey x1; order 3: blue x1
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
  "items": [{"sku": "ELF-3S-GRY", "quantity": 2}, {"sku": "ELF-L-BLU", "quantity": 3}]}',
  '[{"sku": "ELF-L-BLU", "location": "main", "quantity": 2}, {"sku": "ELF-L-BLU", "location": "bangkok", "quantity": 1}]')->'order_id' AS o1;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}')->'order_id' AS o2;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}')->'order_id' AS o3;
SELECT * FROM stock;

-- the happy path: pending → confirmed → packed → shipped (consumes stock) → delivered → returned (puts it back)
SELECT elfsofa.set_order_status(1, 'confirmed') - 'order_number' AS r;
SELECT elfsofa.set_order_status(1, 'packed', 'boxed by Nok') - 'order_number' AS r;
SELECT * FROM stock;
SELECT elfsofa.set_order_status(1, 'shipped', 'Kerry TH123') - 'order_number' AS r;
SELECT * FROM stock;
SELECT elfsofa.set_order_status(1, 'delivered') - 'order_number' AS r;
SELECT elfsofa.set_order_status(1, 'returned', 'wrong colour') - 'order_number' AS r;
SELECT * FROM stock;
SELECT p.sku, g.location, g.delta_on_hand, g.delta_reserved, g.reason, g.actor, g.note
  FROM elfsofa.stock_ledger g JOIN elfsofa.products p ON p.id = g.product_id WHERE g.order_id = 1 ORDER BY g.id;
SELECT topic, key, data - 'order_number' AS data FROM elfsofa.events
 WHERE topic LIKE 'order.status%' OR (topic = 'inventory.updated' AND data->>'reason' <> 'reserve') ORDER BY id;

-- cancel before shipping releases the reservation
SELECT elfsofa.cancel_order(2, 'customer changed mind') - 'order_number' AS r;
SELECT * FROM stock;
SELECT topic, key, data - 'order_number' AS data FROM elfsofa.events WHERE key = '2' AND topic <> 'order.created' ORDER BY id;
-- cancelling through set_order_status works the same, also from packed
SELECT elfsofa.set_order_status(3, 'confirmed') ->> 'status' AS s;
SELECT elfsofa.set_order_status(3, 'packed') ->> 'status' AS s;
SELECT elfsofa.set_order_status(3, 'cancelled', 'out of tape') - 'order_number' AS r;
SELECT topic FROM elfsofa.events WHERE key = '3' ORDER BY id;
SELECT * FROM stock;
-- ledger still adds up to the levels
SELECT (SELECT sum(delta_on_hand) FROM elfsofa.stock_ledger) = (SELECT sum(on_hand) FROM elfsofa.stock_levels) AS on_hand_ok,
       (SELECT sum(delta_reserved) FROM elfsofa.stock_ledger) = (SELECT sum(reserved) FROM elfsofa.stock_levels) AS reserved_ok;

-- rejections: nothing changes
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}')->'order_id' AS o4;
SELECT * FROM written;
SELECT elfsofa.set_order_status(4, 'shipped');
:err
SELECT elfsofa.set_order_status(4, 'delivered');
:err
SELECT elfsofa.set_order_status(4, 'pending');
:err
SELECT elfsofa.set_order_status(4, 'lost');
:err
SELECT elfsofa.set_order_status(4, NULL);
:err
SELECT elfsofa.set_order_status(NULL, 'confirmed');
:err
SELECT elfsofa.set_order_status(4, 'confirmed', repeat('x', 1001));
:err
SELECT elfsofa.set_order_status(999, 'confirmed');
:err
SELECT elfsofa.cancel_order(999);
:err
SELECT elfsofa.cancel_order(2);
:err
SELECT elfsofa.cancel_order(1);
:err
SELECT elfsofa.set_order_status(1, 'pending');
:err
SELECT elfsofa.set_order_status(2, 'confirmed');
:err
SELECT * FROM written;

-- direct UPDATEs: steps without stock effects pass the trigger, the rest are refused
UPDATE elfsofa.orders SET status = 'confirmed' WHERE id = 4;
SELECT id, status FROM elfsofa.orders WHERE id = 4;
UPDATE elfsofa.orders SET status = 'delivered' WHERE id = 4;
:err
UPDATE elfsofa.orders SET status = 'cancelled' WHERE id = 4;
:err
UPDATE elfsofa.orders SET status = 'pending' WHERE id = 2;
:err
UPDATE elfsofa.orders SET status = 'packed' WHERE id = 4;
UPDATE elfsofa.orders SET status = 'shipped' WHERE id = 4;
:err
UPDATE elfsofa.orders SET note = 'ring twice' WHERE id = 4;
SELECT id, status, note FROM elfsofa.orders WHERE id = 4;
SELECT * FROM written;

-- expire_unpaid_orders: only pending, unpaid promptpay/bank_transfer orders older than the cut-off
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}',
  NULL, '{"method": "promptpay", "amount": 1000}')->'order_id' AS o5_promptpay;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}',
  NULL, '{"method": "bank_transfer", "amount": 1000}')->'order_id' AS o6_transfer;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}',
  NULL, '{"method": "card", "amount": 1000}')->'order_id' AS o7_card;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}',
  NULL, '{"method": "promptpay", "amount": 1000, "provider": "omise", "provider_ref": "chrg_p", "status": "captured"}')->'order_id' AS o8_paid;
SELECT elfsofa.available('ELF-3S-GRY');
SELECT elfsofa.expire_unpaid_orders('1 hour');
-- every order placed in an earlier transaction is older than zero seconds
SELECT elfsofa.expire_unpaid_orders('0 seconds');
SELECT id, status, payment_status, payment_method FROM elfsofa.orders WHERE id >= 5 ORDER BY id;
SELECT elfsofa.available('ELF-3S-GRY');
SELECT data->>'reason' AS reason FROM elfsofa.events WHERE topic = 'order.cancelled' AND key IN ('5', '6') ORDER BY key;
SELECT elfsofa.expire_unpaid_orders('0 seconds');
SELECT elfsofa.expire_unpaid_orders(NULL);
:err
SELECT elfsofa.expire_unpaid_orders('-1 hour');
:err
