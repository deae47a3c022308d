-- elfsofa install script, part 30: orders, their lifecycle and payments
-- (src/orders/: orders.c, order_parse.c, order_idempotency.c, payments.c, lifecycle.c).

-- The order-writing functions run with plan_cache_mode = force_generic_plan:
-- every statement in them is a key lookup, and the foreign-key checks into the
-- partitioned orders table would otherwise be re-planned on every call (the
-- plan cache judges a custom plan that prunes to one partition cheaper than
-- the generic plan, which prunes the same partitions when it starts).
CREATE FUNCTION @extschema@.process_order(order_data jsonb, inventory_updates jsonb DEFAULT NULL, payment_info jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'elfsofa_process_order';
COMMENT ON FUNCTION @extschema@.process_order(jsonb, jsonb, jsonb) IS
  'Places an order atomically: validates order_data {customer_id?, items:[{sku, quantity}], idempotency_key?, shipping_address?, note?}, prices it from the catalog, reserves stock in one global lock order (product, then location main, then the others by name; per sku from inventory_updates [{sku, location, quantity}] when given; otherwise from main first, then the other locations by name, one order line and one ledger row per (sku, location) used), writes order, lines, ledger, payment (payment_info {method, amount? (defaults to the total), provider?, provider_ref?, status?}) and events. Returns {order_id, order_number, status, total, currency, replayed}. 22023 bad input, PT404 unknown sku/customer, PT409 insufficient stock (at the named location, or over all locations without inventory_updates; DETAIL gives sku, available under the lock and the ordered quantity) or reused idempotency key, PT422 payment amount differs from total, 42501 other customer.';

CREATE FUNCTION @extschema@.purge_idempotency_keys()
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_purge_idempotency_keys';
COMMENT ON FUNCTION @extschema@.purge_idempotency_keys() IS
  'Upkeep: deletes expired process_order idempotency keys and returns how many were deleted.';

CREATE FUNCTION @extschema@.set_order_status(order_id bigint, status text, note text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'elfsofa_set_order_status';
COMMENT ON FUNCTION @extschema@.set_order_status(bigint, text, text) IS
  'Moves an order along pending→confirmed→packed→shipped→delivered→returned (cancelled from pending/confirmed/packed); cancel releases reserved stock, ship consumes it, return puts it back, each through the stock ledger; emits order.status.updated. Returns {order_id, order_number, status, previous_status, payment_status}. 22023 unknown status, PT404 unknown order, PT409 illegal transition.';

CREATE FUNCTION @extschema@.cancel_order(order_id bigint, reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'elfsofa_cancel_order';
COMMENT ON FUNCTION @extschema@.cancel_order(bigint, text) IS
  'Cancels an order that has not shipped, releasing its reserved stock through the ledger; emits order.status.updated and order.cancelled. PT404 unknown order, PT409 when already shipped, cancelled or returned.';

CREATE FUNCTION @extschema@.record_payment(order_id bigint, payment_info jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'elfsofa_record_payment';
COMMENT ON FUNCTION @extschema@.record_payment(bigint, jsonb) IS
  'Records a payment {method, amount? (defaults to the order total), provider?, provider_ref?, status: pending|authorized|captured|failed|refunded} for an order and updates orders.payment_status (unpaid/authorized/paid/refunded); a repeated (provider, provider_ref) with the same status returns the existing payment with replayed=true and changes nothing, a forward status step updates it. Emits payment.recorded. 22023 bad input, PT404 unknown order, PT409 reference of another order or backward step, PT422 amount differs from the total.';

CREATE FUNCTION @extschema@.expire_unpaid_orders(older_than interval)
RETURNS integer
LANGUAGE c VOLATILE
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'elfsofa_expire_unpaid_orders';
COMMENT ON FUNCTION @extschema@.expire_unpaid_orders(interval) IS
  'Upkeep: cancels pending, unpaid promptpay/bank_transfer orders older than older_than, releasing their stock; skips orders locked by others; returns how many were cancelled.';

CREATE FUNCTION @extschema@.orders_status_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'elfsofa_orders_status_guard';
COMMENT ON FUNCTION @extschema@.orders_status_guard() IS
  'Trigger: refuses an UPDATE of orders.status that is not a step of the transition table, or that would need stock changes (ship, cancel, return) outside set_order_status/cancel_order (PT409).';

CREATE TRIGGER orders_status_guard
    BEFORE UPDATE OF status ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_status_guard();
