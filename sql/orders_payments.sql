-- record_payment: payment states, de-duplicated webhooks, orders.payment_status, rejections.
\i test/regress_setup.sql
SET elfsofa.actor = 'regress';

INSERT INTO elfsofa.products (sku, name, price) VALUES ('ELF-3S-GRY', '3-seat cover, grey', 890.00);
SELECT elfsofa.restock('ELF-3S-GRY', 10);
INSERT INTO elfsofa.customers (id, email) VALUES ('11111111-1111-1111-1111-111111111111', 'somchai@example.com');
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 2}]}')->'order_id' AS o1;
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}',
  NULL, '{"method": "card", "amount": 890, "provider": "omise", "provider_ref": "chrg_2"}')->'order_id' AS o2;

CREATE TEMP VIEW written AS SELECT
  (SELECT string_agg(format('%s:%s:%s', id, provider_ref, status), ' ' ORDER BY id) FROM elfsofa.payments) AS payments,
  (SELECT string_agg(id || ':' || payment_status || ':' || coalesce(payment_method, '-'), ' ' ORDER BY id) FROM elfsofa.orders) AS orders,
  (SELECT count(*) FROM elfsofa.events WHERE topic = 'payment.recorded') AS payment_events;
SELECT * FROM written;

-- a PromptPay charge: pending, then the webhook says captured → order paid
SELECT elfsofa.record_payment(1, '{"method": "promptpay", "amount": 1780, "provider": "omise", "provider_ref": "chrg_1"}');
SELECT * FROM written;
SELECT elfsofa.record_payment(1, '{"method": "promptpay", "amount": 1780.00, "provider": "omise", "provider_ref": "chrg_1", "status": "captured"}');
SELECT * FROM written;
-- the provider re-sends the same webhook: same payment back, nothing changes
SELECT elfsofa.record_payment(1, '{"method": "promptpay", "amount": 1780.00, "provider": "omise", "provider_ref": "chrg_1", "status": "captured"}');
SELECT * FROM written;
SELECT topic, key, data FROM elfsofa.events WHERE topic = 'payment.recorded' ORDER BY id;
-- refund
SELECT elfsofa.record_payment(1, '{"method": "promptpay", "amount": 1780, "provider": "omise", "provider_ref": "chrg_1", "status": "refunded"}');
-- card authorised at checkout (payment from process_order), then captured
SELECT elfsofa.record_payment(2, '{"method": "card", "amount": 890, "provider": "omise", "provider_ref": "chrg_2", "status": "authorized"}');
SELECT elfsofa.record_payment(2, '{"method": "card", "amount": 890, "provider": "omise", "provider_ref": "chrg_2", "status": "captured"}');
-- cash on delivery without a provider reference: a new payment row each time
SELECT elfsofa.process_order('{"customer_id": "11111111-1111-1111-1111-111111111111", "items": [{"sku": "ELF-3S-GRY", "quantity": 1}]}')->'order_id' AS o3;
SELECT elfsofa.record_payment(3, '{"method": "cod", "amount": 890, "status": "failed"}');
SELECT elfsofa.record_payment(3, '{"method": "cod", "status": "captured"}');
SELECT * FROM written;

-- rejections: nothing changes
SELECT elfsofa.record_payment(NULL, '{"method": "cod", "amount": 890}');
:err
SELECT elfsofa.record_payment(3, NULL);
:err
SELECT elfsofa.record_payment(3, '"paid"');
:err
SELECT elfsofa.record_payment(3, '{"amount": 890}');
:err
SELECT elfsofa.record_payment(3, '{"method": "cash", "amount": 890}');
:err
SELECT elfsofa.record_payment(3, '{"method": "cod", "amount": "890"}');
:err
SELECT elfsofa.record_payment(3, '{"method": "cod", "amount": 890, "status": "paid"}');
:err
SELECT elfsofa.record_payment(3, '{"method": "cod", "amount": 890, "provider_ref": "x"}');
:err
SELECT elfsofa.record_payment(999, '{"method": "cod", "amount": 890}');
:err
SELECT elfsofa.record_payment(3, '{"method": "cod", "amount": 100}');
:err
-- a reference already used by another order
SELECT elfsofa.record_payment(3, '{"method": "card", "amount": 890, "provider": "omise", "provider_ref": "chrg_2", "status": "captured"}');
:err
-- backwards: a captured charge cannot become pending or authorized again; refunded is final
SELECT elfsofa.record_payment(2, '{"method": "card", "amount": 890, "provider": "omise", "provider_ref": "chrg_2", "status": "pending"}');
:err
SELECT elfsofa.record_payment(1, '{"method": "promptpay", "amount": 1780, "provider": "omise", "provider_ref": "chrg_1", "status": "captured"}');
:err
SELECT * FROM written;
