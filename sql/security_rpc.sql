-- POST /rpc/process_order replayed with the SQL PostgREST sends, as each
-- Supabase role: outcome and SQLSTATE (→ HTTP status), and hostile inputs
-- refused with nothing written.
\i test/regress_setup.sql
\i test/supabase_roles.sql
\set SHOW_CONTEXT never
SELECT elfsofa.grant_api() -> 'missing_roles' AS missing_roles;
SELECT elfsofa.rate_limit_reset() >= 0 AS reset;

INSERT INTO elfsofa.products (sku, name, price) VALUES ('RPC-L-GRY', 'L-shape cover, grey', 890), ('RPC-2-BLU', '2-seat cover, blue', 450);
SELECT elfsofa.restock('RPC-L-GRY', 10), elfsofa.restock('RPC-2-BLU', 10);
INSERT INTO elfsofa.customers (id, email, full_name, auth_user_id) VALUES
    ('a0000000-0000-4000-8000-0000000000c1', 'ann@example.com', 'Ann', 'aaaaaaaa-0000-4000-8000-000000000001'),
    ('b0000000-0000-4000-8000-0000000000c2', 'bee@example.com', 'Bee', 'bbbbbbbb-0000-4000-8000-000000000002');
\set ann a0000000-0000-4000-8000-0000000000c1
\set bee b0000000-0000-4000-8000-0000000000c2
-- what a refused request must leave untouched
CREATE VIEW written AS
SELECT (SELECT count(*) FROM elfsofa.orders) AS orders, (SELECT count(*) FROM elfsofa.order_lines) AS lines,
       (SELECT count(*) FROM elfsofa.stock_ledger) AS ledger, (SELECT count(*) FROM elfsofa.payments) AS payments,
       (SELECT count(*) FROM elfsofa.idempotency_keys) AS idem_keys, (SELECT count(*) FROM elfsofa.events WHERE topic LIKE 'order%') AS order_events;

-- PostgREST logs in as authenticator; each request is one transaction with
-- PostgREST's statements: the transaction-local settings,
-- the db-pre-request hook, then the call (a JSON body, arguments by name).
PREPARE pgrst_settings(text, text, text) AS
SELECT set_config('search_path', '"elfsofa", "public"', true), set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true), set_config('request.method', 'POST', true),
       set_config('request.path', '/rpc/process_order', true), set_config('request.headers', $3, true),
       set_config('request.cookies', '{}', true);
PREPARE pgrst_call(json) AS
WITH pgrst_source AS (
  SELECT pgrst_call.pgrst_scalar
  FROM (SELECT $1 AS json_data) pgrst_payload,
  LATERAL (SELECT "order_data", "inventory_updates", "payment_info"
           FROM json_to_record(pgrst_payload.json_data) AS _("order_data" jsonb, "inventory_updates" jsonb, "payment_info" jsonb) LIMIT 1) pgrst_body,
  LATERAL (SELECT "elfsofa"."process_order"("order_data" := pgrst_body."order_data", "inventory_updates" := pgrst_body."inventory_updates",
                                            "payment_info" := pgrst_body."payment_info") pgrst_scalar) pgrst_call
)
SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status, '' AS response_inserted
FROM (SELECT "process_order".* FROM "pgrst_source" AS "process_order") _postgrest_t;

\set jwt_ann '{"aud":"authenticated","role":"authenticated","sub":"aaaaaaaa-0000-4000-8000-000000000001","email":"ann@example.com"}'
\set jwt_ann_forged '{"aud":"authenticated","role":"service_role","sub":"aaaaaaaa-0000-4000-8000-000000000001"}'
\set hdr '{"x-forwarded-for":"203.0.113.7","content-type":"application/json"}'
\set order_ann '{"order_data": {"items": [{"sku": "RPC-L-GRY", "quantity": 2}], "idempotency_key": "web-ann-1"}, "payment_info": {"method": "promptpay", "amount": 1780.00}}'

-- anon (no sign-in): no EXECUTE → 42501, HTTP 401
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('anon', '{"role":"anon"}', :'hdr') \gset pre_
SET LOCAL ROLE anon;
SELECT elfsofa.api_guard();
EXECUTE pgrst_call(:'order_ann');
:err
ROLLBACK;

-- Ann, signed in, orders for herself (customer_id from her JWT sub) → 200
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT elfsofa.api_guard();
EXECUTE pgrst_call(:'order_ann') \gset
COMMIT;
SELECT :'body'::jsonb - 'order_number' AS body, :'page_total' AS page_total;
SELECT o.customer_id = :'ann' AS for_ann, o.status, o.total FROM elfsofa.orders o;

-- the same request again (a retried POST) → the stored response, replayed
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(:'order_ann') \gset
COMMIT;
SELECT :'body'::jsonb -> 'replayed' AS replayed, :'body'::jsonb -> 'order_id' AS order_id;

-- Ann orders for Bee → 42501, HTTP 403; her forged "service_role" claim changes nothing
SELECT * FROM written;
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('customer_id', :'bee', 'items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)))));
:err
ROLLBACK;
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann_forged', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('customer_id', :'bee', 'items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)))));
:err
ROLLBACK;
SELECT * FROM written;

-- a signed-in user with no customer row → PT404 (register_customer first)
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', '{"role":"authenticated","sub":"cccccccc-0000-4000-8000-000000000003"}', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call('{"order_data": {"items": [{"sku": "RPC-2-BLU", "quantity": 1}]}}');
:err
ROLLBACK;

-- service_role (the shop's back office) orders for Bee → 200
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('service_role', '{"role":"service_role"}', :'hdr') \gset pre_
SET LOCAL ROLE service_role;
SELECT elfsofa.api_guard();
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('customer_id', :'bee', 'items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 3))))) \gset
COMMIT;
SELECT :'body'::jsonb - 'order_number' AS body;
-- who acted, in the stock ledger: the JWT sub, else the calling role (not the function's owner)
SELECT order_id, actor FROM elfsofa.stock_ledger WHERE reason = 'reserve' ORDER BY order_id;

-- GET /orders?select=total,order_lines(sku,quantity) as Ann (read-only transaction): her order only
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT elfsofa.api_guard();
SELECT o.total, (SELECT json_agg(json_build_object('sku', l.sku, 'quantity', l.quantity)) FROM elfsofa.order_lines l
                  WHERE l.order_id = o.id AND l.created_at = o.created_at) AS order_lines
  FROM elfsofa.orders o;
SELECT count(*) AS payments_seen FROM elfsofa.payments;
COMMIT;
-- Ann cannot change her order's status herself: set_order_status/cancel_order are back-office RPCs
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT elfsofa.cancel_order(1);
:err
ROLLBACK;
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT elfsofa.set_order_status(1, 'confirmed');
:err
ROLLBACK;
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT elfsofa.record_payment(1, '{"method": "card", "amount": 1780.00, "status": "captured"}');
:err
ROLLBACK;

---------------------------------------------------------------------------
-- Hostile inputs through the same path, as Ann: refused, nothing written
---------------------------------------------------------------------------
SELECT * FROM written;
SELECT json_build_object('order_data', json_build_object('items',
        (SELECT json_agg(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)) FROM generate_series(1, 10000)))) AS lines_10000,
       json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1))),
        'inventory_updates', (SELECT json_agg(json_build_object('sku', 'RPC-2-BLU', 'location', 'main', 'quantity', 1)) FROM generate_series(1, 10000))) AS updates_10000 \gset
-- 10,000 order lines → 22023
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(:'lines_10000');
:err
ROLLBACK;
-- 10,000 inventory updates → 22023
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(:'updates_10000');
:err
ROLLBACK;
-- nesting 100,000 levels deep → 54001 while parsing the body, before elfsofa runs
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
\set VERBOSITY terse
EXECUTE pgrst_call(('{"order_data": {"items": [{"sku": "RPC-2-BLU", "quantity": 1}], "shipping_address": {"a": '
                    || repeat('[', 100000) || repeat(']', 100000) || '}}}')::json);
:err
\set VERBOSITY default
ROLLBACK;
-- huge strings → 22023, each naming the field
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SAVEPOINT s;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)), 'note', repeat('x', 1000000))));
:err
ROLLBACK TO s;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', repeat('S', 100000), 'quantity', 1)))));
:err
ROLLBACK TO s;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)), 'idempotency_key', repeat('k', 100000))));
:err
ROLLBACK TO s;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)), 'shipping_address', json_build_object('line1', repeat('x', 5000000)))));
:err
ROLLBACK TO s;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1))),
        'payment_info', json_build_object('method', 'card', 'amount', 450, 'provider_ref', repeat('r', 100000))));
:err
ROLLBACK TO s;
-- absurd numbers → 22023
EXECUTE pgrst_call('{"order_data": {"items": [{"sku": "RPC-2-BLU", "quantity": 1e12}]}}');
:err
ROLLBACK TO s;
EXECUTE pgrst_call('{"order_data": {"items": [{"sku": "RPC-2-BLU", "quantity": -1}]}}');
:err
ROLLBACK TO s;
ROLLBACK;
SELECT * FROM written;

---------------------------------------------------------------------------
-- Every write is held to the caller's own customer, whichever RPC does it
-- (trigger elfsofa_customer_guard): carts take a customer_id argument.
---------------------------------------------------------------------------
SELECT elfsofa.cart_add(:'bee', 'RPC-L-GRY', 1) ->> 'status' AS bee_cart;   -- set up by the owner
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', :'jwt_ann', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
SELECT jsonb_path_query_array(elfsofa.cart_add(:'ann', 'RPC-2-BLU', 2), '$.items[*].sku') AS ann_cart;
SELECT count(*) AS carts_seen, (SELECT count(*) FROM elfsofa.cart_items) AS items_seen FROM elfsofa.carts;
-- refused by the RPC's own check or by the write guard: only the SQLSTATE matters
\set VERBOSITY sqlstate
SAVEPOINT s;
SELECT elfsofa.cart_add(:'bee', 'RPC-2-BLU', 1);
:err
ROLLBACK TO s;
SELECT elfsofa.cart_remove(:'bee', 'RPC-L-GRY');
:err
ROLLBACK TO s;
SELECT elfsofa.cart_checkout(:'bee');
:err
ROLLBACK TO s;
\set VERBOSITY default
-- her own checkout works, through process_order
SELECT elfsofa.cart_checkout(:'ann') - 'order_number' - 'order_id' - 'cart_id' AS checkout;
COMMIT;
-- a token without a sub cannot order for anyone, even naming a customer
BEGIN;
SET LOCAL SESSION AUTHORIZATION authenticator;  -- PostgREST's login role
EXECUTE pgrst_settings('authenticated', '{"role":"authenticated"}', :'hdr') \gset pre_
SET LOCAL ROLE authenticated;
EXECUTE pgrst_call(json_build_object('order_data', json_build_object('customer_id', :'bee', 'items', json_build_array(json_build_object('sku', 'RPC-2-BLU', 'quantity', 1)))));
:err
ROLLBACK;
SELECT c.email, k.status, (SELECT count(*) FROM elfsofa.cart_items i WHERE i.cart_id = k.id) AS items
  FROM elfsofa.carts k JOIN elfsofa.customers c ON c.id = k.customer_id ORDER BY c.email;
SELECT * FROM written;
