-- pgTAP: what the red-team review reproduced, each closed at its root.
--  1. service_role could attach a trigger to a table SECURITY DEFINER code
--     writes (and so run code as the extension's owner), truncate tables,
--     forge audit rows or change partition retention;
--  2. a customer could declare their own order paid;
--  4. a new user whose JWT carried a guest's e-mail took the guest over;
--  6. without a usable JWT sub a non-privileged caller could act for any
--     customer (another's cart, another's order by idempotency replay).
\set QUIET 1
BEGIN;
SELECT plan(29);
\i test/supabase_roles.sql
SELECT elfsofa.grant_api() IS NOT NULL AS granted \gset

\i test/pgtap_probe.sql
GRANT EXECUTE ON FUNCTION pg_temp.probe(text, text, text) TO PUBLIC;

INSERT INTO elfsofa.products (sku, name, price) VALUES ('RT-1', 'red-team cover', 100);
SELECT elfsofa.restock('RT-1', 50) AS stock \gset
INSERT INTO elfsofa.customers (id, email, auth_user_id) VALUES
    ('c0000000-0000-4000-8000-0000000000a1', 'rt-a@example.th', 'a0000000-0000-4000-8000-0000000000a1'),
    ('c0000000-0000-4000-8000-0000000000b2', 'rt-b@example.th', 'a0000000-0000-4000-8000-0000000000b2');
SELECT '{"role":"authenticated","sub":"a0000000-0000-4000-8000-0000000000a1"}' AS claims_a \gset
-- customer b's order with an idempotency key, placed by the shop itself
SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2",
         "items": [{"sku": "RT-1", "quantity": 1}], "idempotency_key": "rt-b-1"}')->>'order_id' AS b_order \gset

-- 1. service_role: row privileges only
SELECT is((SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p')
              AND (has_table_privilege('service_role', c.oid, 'TRIGGER')
                   OR has_table_privilege('service_role', c.oid, 'TRUNCATE')
                   OR has_table_privilege('service_role', c.oid, 'REFERENCES'))), 0::bigint,
          'service_role has TRIGGER, TRUNCATE or REFERENCES on no elfsofa table');
CREATE FUNCTION pg_temp.climb() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$CREATE TRIGGER climb BEFORE INSERT ON elfsofa.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.climb()$$),
          '42501', 'service_role cannot attach a trigger to elfsofa.orders');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$CREATE TRIGGER climb BEFORE INSERT ON elfsofa.stock_ledger FOR EACH ROW EXECUTE FUNCTION pg_temp.climb()$$),
          '42501', 'nor to elfsofa.stock_ledger');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$TRUNCATE elfsofa.idempotency_keys$$),
          '42501', 'service_role cannot TRUNCATE elfsofa tables');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$INSERT INTO elfsofa.audit_log (logged_at, txid, actor, db_user, schema_name, table_name, operation)
            VALUES (now() - interval '1 year', 1, 'forger', 'x', 'public', 't', 'INSERT')$$),
          '42501', 'service_role cannot insert forged, back-dated audit rows');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$UPDATE elfsofa.partition_sets SET retention = '1 day', retention_action = 'drop'$$),
          '42501', 'service_role cannot shorten a partition set''s retention directly');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$DELETE FROM elfsofa.partition_sets$$),
          '42501', 'nor unregister partition sets');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT count(*) FROM elfsofa.partition_sets$$),
          (SELECT count(*)::text FROM elfsofa.partition_sets), 'service_role still reads the partition sets');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$UPDATE elfsofa.products SET name = 'renamed' WHERE sku = 'RT-1' RETURNING name$$),
          'renamed', 'service_role still writes shop rows');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT count(*) FROM elfsofa.audit_log$$) ~ '^[0-9]+$',
          true, 'service_role still reads the audit log');

-- 3. a change of a set's settings is audited, maintenance's bookkeeping is not
SELECT coalesce(max(id), 0) AS audit_mark FROM elfsofa.audit_log \gset
UPDATE elfsofa.partition_sets SET retention = '30 days' WHERE parent = 'elfsofa.events'::regclass;
SELECT is((SELECT count(*) FROM elfsofa.audit_log
            WHERE id > :audit_mark AND table_name = 'partition_sets' AND operation = 'UPDATE'
              AND changed_columns = ARRAY['retention']), 1::bigint,
          'changing a set''s retention writes an audit row naming the column');
SELECT coalesce(max(id), 0) AS audit_mark FROM elfsofa.audit_log \gset
SELECT elfsofa.run_maintenance() IS NOT NULL AS ran \gset
SELECT is((SELECT count(*) FROM elfsofa.audit_log WHERE id > :audit_mark AND table_name = 'partition_sets' AND operation = 'UPDATE'),
          0::bigint, 'a maintenance run (last_run, last_error) writes no audit row for the sets');

-- 2. payment state other than pending only from a privileged role
SELECT is(pg_temp.probe('authenticated', :'claims_a',
          $$SELECT elfsofa.process_order('{"items": [{"sku": "RT-1", "quantity": 1}]}',
                                         NULL, '{"method": "card", "status": "captured"}')->>'status'$$),
          '42501', 'a customer cannot declare their order captured');
SELECT is(pg_temp.probe('authenticated', :'claims_a',
          $$SELECT elfsofa.process_order('{"items": [{"sku": "RT-1", "quantity": 1}]}',
                                         NULL, '{"method": "card", "status": "authorized"}')->>'status'$$),
          '42501', 'nor authorized');
SELECT is(pg_temp.probe('authenticated', :'claims_a',
          $$SELECT elfsofa.process_order('{"items": [{"sku": "RT-1", "quantity": 1}]}',
                                         NULL, '{"method": "card", "status": "pending"}')->>'status'$$),
          'pending', 'a pending payment is the customer''s to give');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2",
                     "items": [{"sku": "RT-1", "quantity": 1}]}', NULL,
                     '{"method": "card", "status": "captured"}')->>'status'$$),
          'pending', 'the payment webhook (service_role) may record a captured payment');
SELECT is((SELECT count(*) FROM elfsofa.orders o JOIN elfsofa.customers c ON c.id = o.customer_id
            WHERE c.email = 'rt-a@example.th' AND o.payment_status <> 'unpaid'), 0::bigint,
          'no paid order for the customer who tried');

-- 6. no usable sub: nobody
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated"}',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2", "items": [{"sku": "RT-1", "quantity": 1}]}')->>'status'$$),
          '42501', 'no sub in the claims: cannot order for a named customer');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":""}',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2", "items": [{"sku": "RT-1", "quantity": 1}]}')->>'status'$$),
          '42501', 'an empty sub: the same');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":42}',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2", "items": [{"sku": "RT-1", "quantity": 1}]}')->>'status'$$),
          '42501', 'a sub that is not a string: the same');
SELECT is(pg_temp.probe('authenticated', '["not", "an", "object"]',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2", "items": [{"sku": "RT-1", "quantity": 1}]}')->>'status'$$),
          '42501', 'claims that are not an object: the same');
SELECT is(pg_temp.probe('authenticated', '',
          $$SELECT elfsofa.cart_get('c0000000-0000-4000-8000-0000000000b2')::text$$),
          '42501', 'no claims at all: cannot read another customer''s cart');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated"}',
          $$SELECT elfsofa.process_order('{"customer_id": "c0000000-0000-4000-8000-0000000000b2", "items": [{"sku": "RT-1", "quantity": 1}],
                                           "idempotency_key": "rt-b-1"}')->>'order_id'$$),
          '42501', 'nor replay another customer''s order by its idempotency key');
SELECT is(pg_temp.probe('authenticated', :'claims_a',
          $$SELECT elfsofa.process_order('{"items": [{"sku": "RT-1", "quantity": 1}]}')->>'status'$$),
          'pending', 'a signed-in customer still orders for themselves');

-- 4. a guest customer is linked only on a verified e-mail, keeping its name and phone
INSERT INTO elfsofa.customers (id, email, full_name, phone) VALUES
    ('c0000000-0000-4000-8000-0000000000d4', 'guest@example.th', 'Guest Name', '+66 81 111 1111');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":"a0000000-0000-4000-8000-0000000000e5","email":"guest@example.th"}',
          $$SELECT elfsofa.register_customer('Mallory', '+66 89 999 9999')::text$$),
          '42501', 'an unverified e-mail does not take over the guest with that address');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":"a0000000-0000-4000-8000-0000000000e5","email":"guest@example.th","email_verified":"true"}',
          $$SELECT elfsofa.register_customer('Mallory', '+66 89 999 9999')::text$$),
          '42501', 'nor does email_verified given as a string');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":"a0000000-0000-4000-8000-0000000000f6","email":"new-user@example.th"}',
          $$SELECT (elfsofa.register_customer('New User') IS NOT NULL)::text$$),
          'true', 'a new address needs no verification: there is nobody to take over');
SELECT set_config('request.jwt.claims',
    '{"role":"authenticated","sub":"a0000000-0000-4000-8000-0000000000e5","email":"guest@example.th","user_metadata":{"email_verified":true}}', true)
    IS NOT NULL AS claims_set \gset
SET LOCAL ROLE authenticated;
SELECT elfsofa.register_customer('Mallory', '+66 89 999 9999') AS linked \gset
RESET ROLE;
SELECT is(:'linked'::uuid, 'c0000000-0000-4000-8000-0000000000d4'::uuid,
          'a verified e-mail (user_metadata.email_verified) links the guest to the user');
SELECT is((SELECT full_name || ' / ' || phone FROM elfsofa.customers WHERE id = :'linked'),
          'Guest Name / +66 81 111 1111', 'linking kept the guest''s name and phone');

SELECT * FROM finish();
ROLLBACK;
