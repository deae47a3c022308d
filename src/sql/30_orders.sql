-- elfsofa install script, part 30: orders, their lifecycle and payments
-- (src/orders.c, src/lifecycle.c).

CREATE FUNCTION @extschema@.process_order(order_data jsonb, inventory_updates jsonb DEFAULT NULL, payment_info jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_process_order';
COMMENT ON FUNCTION @extschema@.process_order(jsonb, jsonb, jsonb) IS
  'Places an order atomically: validates order_data {customer_id?, items:[{sku, quantity}], idempotency_key?, shipping_address?, note?}, prices it from the catalog, reserves stock (from inventory_updates [{sku, location, quantity}] or location main) in product/location lock order, writes order, lines, ledger, payment (payment_info {method, amount, provider?, provider_ref?, status?}) and events. Returns {order_id, order_number, status, total, currency, replayed}. 22023 bad input, PT404 unknown sku/customer, PT409 insufficient stock or reused idempotency key, PT422 payment amount differs from total, 42501 other customer.';

CREATE FUNCTION @extschema@.purge_idempotency_keys()
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_purge_idempotency_keys';
COMMENT ON FUNCTION @extschema@.purge_idempotency_keys() IS
  'Upkeep: deletes expired process_order idempotency keys and returns how many were deleted.';
