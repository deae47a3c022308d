-- process_order: successes, idempotency, and every rejection (each writes nothing).
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold) VALUES
  ('ELF-3S-GRY', '3-seat cover, grey velvet', 1290.00, 5),
  ('ELF-L-BLU', 'L-shape cover, blue linen', 2490.00, 5),
  ('ELF-1S-RED', 'armchair cover, red', 590.50, 2);
INSERT INTO elfsofa.products (sku, name, price, is_active) VALUES ('ELF-OLD', 'discontinued', 100, false);
SELECT elfsofa.restock('ELF-3S-GRY', 20), elfsofa.restock('ELF-L-BLU', 6),
       elfsofa.restock('ELF-L-BLU', 4, 'bangkok'), elfsofa.restock('ELF-1S-RED', 3),
       elfsofa.restock('ELF-OLD', 5);
INSERT INTO elfsofa.customers (id, email, auth_user_id) VALUES
  ('11111111-1111-1111-1111-111111111111', 'somchai@example.com', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'),
  ('22222222-2222-2222-2222-222222222222', 'malee@example.com', 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');

-- what an order writes, counted after every rejection
CREATE TEMP VIEW written AS SELECT
  (SELECT count(*) FROM elfsofa.orders) AS orders,
  (SELECT count(*) FROM elfsofa.order_lines) AS lines,
  (SELECT count(*) FROM elfsofa.stock_ledger) AS ledger,
  (SELECT count(*) FROM elfsofa.payments) AS payments,
  (SELECT count(*) FROM elfsofa.events) AS events,
  (SELECT count(*) FROM elfsofa.idempotency_keys) AS keys,
  (SELECT sum(reserved) FROM elfsofa.stock_levels) AS reserved;
-- the response without the year-dependent order number, plus a check of that number
-- the year of elfsofa.order_number_timezone (Asia/Bangkok), not the session's (pg_regress: PST8PDT)
CREATE TEMP VIEW num AS
  SELECT 'ELF-' || to_char(now() AT TIME ZONE current_setting('elfsofa.order_number_timezone'), 'YYYY') || '-' AS prefix;

-------------------------------------------------------------------------------
-- successes
-------------------------------------------------------------------------------
-- duplicate SKUs merge, client prices and unknown fields are ignored, stock comes from main
SELECT r - 'order_number' AS result, r->>'order_number' = (SELECT prefix FROM num) || '000001' AS number_ok
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 2, "price": 1},
                   {"sku": "ELF-1S-RED", "quantity": 1},
                   {"sku": "ELF-3S-GRY", "quantity": 1, "colour": "pink"}],
         "shipping_address": {"city": "Bangkok", "postcode": "10110"}, "note": "leave at the door",
         "coupon": "FREE"}') r;
SELECT id, customer_id, status, payment_status, payment_method, total, shipping_address, note, idempotency_key
  FROM elfsofa.orders;
SELECT order_id, line_no, sku, location, quantity, unit_price, line_total,
       created_at = (SELECT created_at FROM elfsofa.orders o WHERE o.id = l.order_id) AS same_created_at
  FROM elfsofa.order_lines l ORDER BY line_no;
SELECT p.sku, s.location, s.on_hand, s.reserved FROM elfsofa.stock_levels s JOIN elfsofa.products p ON p.id = s.product_id
 ORDER BY p.sku, s.location;
SELECT p.sku, g.location, g.delta_on_hand, g.delta_reserved, g.reason, g.order_id, g.actor
  FROM elfsofa.stock_ledger g JOIN elfsofa.products p ON p.id = g.product_id WHERE g.reason <> 'restock' ORDER BY g.id;
-- red fell from 3 to 2 available: not below its threshold of 2, so no low-stock event
SELECT topic, key, data - 'order_number' - 'customer_id' AS data FROM elfsofa.events WHERE topic <> 'product.changed' ORDER BY id;
SELECT elfsofa.available('ELF-3S-GRY'), elfsofa.available('ELF-1S-RED');

-- stock from the given locations: 3 blue from bangkok and 2 from main, in one order
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "ELF-L-BLU", "quantity": 5}]}',
       '[{"sku": "ELF-L-BLU", "location": "bangkok", "quantity": 3},
         {"sku": "ELF-L-BLU", "location": "main", "quantity": 1},
         {"sku": "ELF-L-BLU", "location": "main", "quantity": 1}]') r;
SELECT line_no, sku, location, quantity, line_total FROM elfsofa.order_lines WHERE order_id = 2 ORDER BY line_no;
SELECT elfsofa.available('ELF-L-BLU', 'bangkok') AS bangkok, elfsofa.available('ELF-L-BLU', 'main') AS main;
-- main fell from 6 to 4, crossing its threshold of 5: a low-stock event (bangkok was already below)
SELECT topic, key, data FROM elfsofa.events WHERE topic LIKE 'inventory.%' AND (data->>'order_id' = '2' OR topic = 'inventory.low_stock') ORDER BY id;

-- with a captured card payment: payment row written, order marked paid
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "22222222-2222-2222-2222-222222222222",
         "items": [{"sku": "ELF-1S-RED", "quantity": 2}]}', NULL,
       '{"method": "card", "amount": 1181, "provider": "omise", "provider_ref": "chrg_1", "status": "captured"}') r;
SELECT id, status, payment_status, payment_method, total FROM elfsofa.orders WHERE id = 3;
SELECT order_id, method, amount, currency, provider, provider_ref, status,
       order_created_at = (SELECT created_at FROM elfsofa.orders WHERE id = 3) AS same_created_at
  FROM elfsofa.payments;
-- red is now at 0 available (2 before, threshold 2): low stock
SELECT topic, key, data FROM elfsofa.events WHERE topic = 'inventory.low_stock' AND key = 'ELF-1S-RED';
-- pending promptpay without provider: order stays unpaid
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "22222222-2222-2222-2222-222222222222",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', 'null',
       '{"method": "promptpay", "amount": 1290.00}') r;
SELECT id, payment_status, payment_method FROM elfsofa.orders WHERE id = 4;
SELECT order_id, method, amount, provider, status FROM elfsofa.payments WHERE order_id = 4;

-- customer from the JWT sub when customer_id is omitted
SELECT set_config('request.jwt.claims', '{"sub": "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb", "role": "authenticated"}', false);
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}') r;
SELECT id, customer_id FROM elfsofa.orders WHERE id = 5;
-- a privileged database role (here: superuser) may order for another customer despite the sub
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}') r;
SELECT id, customer_id FROM elfsofa.orders WHERE id = 6;
SELECT actor FROM elfsofa.stock_ledger WHERE order_id = 6;
RESET request.jwt.claims;

-- without an amount the payment is for the catalog total (cash on delivery, authorised card)
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "22222222-2222-2222-2222-222222222222",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 1}, {"sku": "ELF-L-BLU", "quantity": 1}]}', NULL,
       '{"method": "card", "status": "authorized", "provider": "omise", "provider_ref": "chrg_auth"}') r;
SELECT o.payment_status, o.payment_method, p.amount, p.status FROM elfsofa.orders o JOIN elfsofa.payments p ON p.order_id = o.id
 WHERE p.provider_ref = 'chrg_auth';

-- order numbers keep at least six digits and grow beyond
SELECT setval('elfsofa.orders_id_seq', 1234566);
SELECT r->>'order_number' = (SELECT prefix FROM num) || '1234567' AS seven_digits
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}') r;
SELECT setval('elfsofa.orders_id_seq', 99);

-------------------------------------------------------------------------------
-- idempotency keys
-------------------------------------------------------------------------------
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-8f1c",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 1}, {"sku": "ELF-3S-GRY", "quantity": 1}]}') r;
SELECT * FROM written;
-- the same request again (merged the same way, extra fields and client prices ignored): replayed, nothing written
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-8f1c",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 2, "price": 0.01}], "utm": "line"}') r;
SELECT * FROM written;
-- the same key with another request
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-8f1c",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 3}]}');
:err
-- keys are per customer: another customer may use the same key
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "22222222-2222-2222-2222-222222222222", "idempotency_key": "web-8f1c",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 3}]}') r;
-- a failed call leaves its key unused: the retry succeeds
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-retry",
         "items": [{"sku": "ELF-1S-RED", "quantity": 1}]}');
:err
SELECT count(*) AS retry_keys FROM elfsofa.idempotency_keys WHERE key = 'web-retry';
SELECT elfsofa.restock('ELF-1S-RED', 1);
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-retry",
         "items": [{"sku": "ELF-1S-RED", "quantity": 1}]}') r;
-- an expired key counts as unused: the same request makes a new order
UPDATE elfsofa.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'web-8f1c';
SELECT r - 'order_number' AS result
  FROM elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "web-8f1c",
         "items": [{"sku": "ELF-3S-GRY", "quantity": 2}]}') r;
SELECT customer_id, key, order_id, response->>'order_id' AS response_order, expires_at > now() AS live
  FROM elfsofa.idempotency_keys ORDER BY customer_id, key;
UPDATE elfsofa.idempotency_keys SET expires_at = now() - interval '1 second' WHERE customer_id = '22222222-2222-2222-2222-222222222222';
SELECT elfsofa.purge_idempotency_keys() AS purged;
SELECT count(*) AS keys_left FROM elfsofa.idempotency_keys;

-------------------------------------------------------------------------------
-- rejections: each writes nothing (compare "written" before and after)
-------------------------------------------------------------------------------
SELECT * FROM written;
\set c '"customer_id": "11111111-1111-1111-1111-111111111111"'
-- 22023 malformed input
SELECT elfsofa.process_order(NULL);
:err
SELECT elfsofa.process_order('null');
:err
SELECT elfsofa.process_order('[]');
:err
SELECT elfsofa.process_order('"order"');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111"}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": {"sku": "ELF-3S-GRY"}}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": []}');
:err
SELECT elfsofa.process_order(jsonb_build_object('customer_id', '11111111-1111-1111-1111-111111111111',
         'items', (SELECT jsonb_agg(jsonb_build_object('sku', 'ELF-3S-GRY', 'quantity', 1)) FROM generate_series(1, 101))));
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": ["ELF-3S-GRY"]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": 42, "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "", "quantity": 1}]}');
:err
SELECT elfsofa.process_order(jsonb_build_object('customer_id', '11111111-1111-1111-1111-111111111111',
         'items', jsonb_build_array(jsonb_build_object('sku', repeat('X', 65), 'quantity', 1))));
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY"}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": null}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": "2"}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}, {"sku": "ELF-L-BLU", "quantity": 0}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": -1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 2.5}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 100001}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1e300}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 60000}, {"sku": "ELF-3S-GRY", "quantity": 60000}]}');
:err
SELECT elfsofa.process_order('{"customer_id": 11111111, "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "somchai", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": "", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "idempotency_key": 7, "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT elfsofa.process_order(jsonb_build_object('customer_id', '11111111-1111-1111-1111-111111111111', 'idempotency_key', repeat('k', 256),
         'items', jsonb_build_array(jsonb_build_object('sku', 'ELF-3S-GRY', 'quantity', 1))));
:err
SELECT elfsofa.process_order(jsonb_build_object('customer_id', '11111111-1111-1111-1111-111111111111', 'note', repeat('n', 2001),
         'items', jsonb_build_array(jsonb_build_object('sku', 'ELF-3S-GRY', 'quantity', 1))));
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "shipping_address": "Bangkok", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
-- inventory_updates must match the items
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '{"sku": "ELF-L-BLU", "location": "main", "quantity": 1}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '["main"]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-3S-GRY", "location": "main", "quantity": 1}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-L-BLU", "location": "Bang Kok", "quantity": 1}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-L-BLU", "quantity": 1}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-L-BLU", "location": "main", "quantity": 0}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 3}]}',
         '[{"sku": "ELF-L-BLU", "location": "main", "quantity": 2}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-L-BLU", "location": "main", "quantity": 1}, {"sku": "ELF-L-BLU", "location": "bangkok", "quantity": 1}]');
:err
-- payment_info
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '[{"method": "card"}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"amount": 1290}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "bitcoin", "amount": 1290}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": "1290"}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": -1290}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": 1290, "status": "refunded"}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": 1290, "currency": "USD"}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": 1290, "provider_ref": "chrg_9"}');
:err
SELECT * FROM written;

-- PT404 unknown sku, inactive product, unknown customer
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}, {"sku": "NO-SUCH", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-OLD", "quantity": 1}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "99999999-9999-9999-9999-999999999999", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT set_config('request.jwt.claims', '{"sub": "cccccccc-cccc-cccc-cccc-cccccccccccc"}', false);
SELECT elfsofa.process_order('{"items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
SELECT set_config('request.jwt.claims', '{"sub": "not-a-uuid"}', false);
SELECT elfsofa.process_order('{"items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
RESET request.jwt.claims;

-- PT409 insufficient stock (nothing reserved for the other lines either), taken payment reference
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}, {"sku": "ELF-1S-RED", "quantity": 2}]}');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 2}]}',
         '[{"sku": "ELF-L-BLU", "location": "bangkok", "quantity": 2}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-L-BLU", "quantity": 1}]}',
         '[{"sku": "ELF-L-BLU", "location": "chiangmai", "quantity": 1}]');
:err
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}', NULL,
         '{"method": "card", "amount": 1290, "provider": "omise", "provider_ref": "chrg_1"}');
:err
-- PT422 payment amount differs from the catalog total
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 2, "price": 1}]}', NULL,
         '{"method": "card", "amount": 2}');
:err

-- 42501: a signed-in user (unprivileged role) ordering for another customer
CREATE ROLE orders_regress_shopper NOLOGIN;
GRANT USAGE ON SCHEMA elfsofa TO orders_regress_shopper;
GRANT SELECT ON elfsofa.customers TO orders_regress_shopper;
GRANT EXECUTE ON FUNCTION elfsofa.process_order(jsonb, jsonb, jsonb) TO orders_regress_shopper;
GRANT USAGE ON SCHEMA elfsofa_internal TO orders_regress_shopper;  -- the wrapper calls the SECURITY DEFINER body there
GRANT EXECUTE ON FUNCTION elfsofa_internal.process_order(jsonb, jsonb, jsonb) TO orders_regress_shopper;
SET ROLE orders_regress_shopper;
SELECT set_config('request.jwt.claims', '{"sub": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "role": "authenticated"}', false);
SELECT elfsofa.process_order('{"customer_id": "22222222-2222-2222-2222-222222222222", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}');
:err
RESET request.jwt.claims;
RESET ROLE;
DROP OWNED BY orders_regress_shopper;
DROP ROLE orders_regress_shopper;

SELECT * FROM written;
-- ledger still sums to the stock levels
SELECT (SELECT sum(delta_on_hand) FROM elfsofa.stock_ledger) = (SELECT sum(on_hand) FROM elfsofa.stock_levels) AS on_hand_ok,
       (SELECT sum(delta_reserved) FROM elfsofa.stock_ledger) = (SELECT sum(reserved) FROM elfsofa.stock_levels) AS reserved_ok;
