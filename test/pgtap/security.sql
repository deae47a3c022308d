-- pgTAP: Supabase fit — grants for roles created after CREATE EXTENSION,
-- nothing for PUBLIC, fixed search_path on every SECURITY DEFINER function,
-- row-level security on every customer-reachable table, and probes run as
-- each Supabase role.
\set QUIET 1
BEGIN;
SELECT plan(46);

\i test/pgtap_probe.sql

-- CREATE EXTENSION in a cluster without Supabase's roles: set any existing
-- ones aside (rolled back at the end), reinstall, then create them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'authenticator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('ALTER ROLE %I RENAME TO %I', r, 'tap_saved_' || r);
        END IF;
    END LOOP;
END
$$;
SET LOCAL client_min_messages = warning;
DROP EXTENSION elfsofa CASCADE;
SELECT lives_ok('CREATE EXTENSION elfsofa', 'CREATE EXTENSION works in a database without anon, authenticated, service_role');
SELECT is(elfsofa.grant_api() -> 'missing_roles', '["anon", "authenticated", "service_role"]'::jsonb,
          'grant_api() reports the missing roles and grants nothing');
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
SELECT ok(NOT has_function_privilege('authenticated', 'elfsofa.available(text,text)', 'EXECUTE'),
          'roles created after CREATE EXTENSION have nothing yet');
SELECT is(elfsofa.grant_api() -> 'roles', '["anon", "authenticated", "service_role"]'::jsonb,
          'grant_api() after creating the roles grants to all three');
SELECT is(elfsofa.grant_api(), elfsofa.grant_api(), 'grant_api() is idempotent');

-- PUBLIC
SELECT is((SELECT count(*) FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            WHERE p.pronamespace = 'elfsofa'::regnamespace AND a.grantee = 0), 0::bigint,
          'PUBLIC can execute no elfsofa function');
SELECT is((SELECT count(*) FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            WHERE c.relnamespace IN ('elfsofa'::regnamespace, 'elfsofa_archive'::regnamespace) AND a.grantee = 0), 0::bigint,
          'PUBLIC has no privilege on any elfsofa table or sequence');
SELECT ok(NOT has_schema_privilege('public', 'elfsofa', 'USAGE') AND NOT has_schema_privilege('public', 'elfsofa', 'CREATE'),
          'PUBLIC cannot use or create in schema elfsofa');

-- SECURITY DEFINER: only in elfsofa_internal (never exposed); elfsofa, the
-- exposed schema, holds SECURITY INVOKER wrappers that the planner inlines
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'elfsofa_internal'::regnamespace AND p.prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')),
          NULL, 'every SECURITY DEFINER function in elfsofa_internal has search_path = pg_catalog, pg_temp');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'elfsofa'::regnamespace AND p.prosecdef),
          NULL, 'the exposed schema elfsofa has no SECURITY DEFINER function');
SELECT ok((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'elfsofa_internal'::regnamespace AND p.prosecdef) >= 4,
          'the API functions customers call run SECURITY DEFINER, in elfsofa_internal');
SELECT is((SELECT array_agg(DISTINCT g.object_name::text) FROM elfsofa.api_grants g
            WHERE g.object_kind = 'function' AND g.run_as_owner
              AND (to_regproc('elfsofa.' || g.object_name) IS NOT NULL OR to_regproc('elfsofa_internal.' || g.object_name) IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_proc w ON w.proname = p.proname
                                                      AND w.proargtypes = p.proargtypes AND w.pronamespace = 'elfsofa'::regnamespace
                               WHERE p.pronamespace = 'elfsofa_internal'::regnamespace AND p.proname = g.object_name
                                 AND p.prosecdef AND NOT w.prosecdef AND w.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')
                                 AND w.proconfig IS NULL AND w.provolatile = p.provolatile
                                 AND pg_get_function_arguments(w.oid) = pg_get_function_arguments(p.oid)
                                 AND pg_get_function_result(w.oid) = pg_get_function_result(p.oid)
                                 AND w.prosrc = format('SELECT elfsofa_internal.%I(%s)', p.proname,
                                                       (SELECT coalesce(string_agg('$' || i, ', ' ORDER BY i), '') FROM generate_series(1, p.pronargs) i)))),
          NULL, 'every api_grants function marked run_as_owner is SECURITY DEFINER in elfsofa_internal, called by a one-SELECT SQL wrapper of the same signature in elfsofa');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'elfsofa_internal'::regnamespace AND p.prosecdef
              AND (has_function_privilege('anon', p.oid, 'EXECUTE') OR has_function_privilege('authenticated', p.oid, 'EXECUTE'))
              AND NOT EXISTS (SELECT 1 FROM elfsofa.api_grants g WHERE g.object_kind = 'function' AND g.object_name = p.proname)),
          NULL, 'customers can execute no SECURITY DEFINER function outside api_grants');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind = 'v'
              AND NOT coalesce(c.reloptions, '{}') @> ARRAY['security_invoker=on']),
          NULL, 'every view in elfsofa is security_invoker');

-- what anon and authenticated may touch
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'elfsofa'::regnamespace AND has_function_privilege('anon', p.oid, 'EXECUTE')),
          ARRAY['api_guard', 'available'], 'anon executes only available() and api_guard()');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'elfsofa'::regnamespace AND has_table_privilege('anon', c.oid, 'SELECT')),
          ARRAY['categories', 'products'], 'anon reads only the catalog');
SELECT is((SELECT count(*) FROM pg_class c, unnest(ARRAY['anon', 'authenticated']) r
            WHERE c.relnamespace IN ('elfsofa'::regnamespace, 'elfsofa_archive'::regnamespace)
              AND c.relkind IN ('r', 'p', 'v', 'S')
              AND (has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                   OR (c.relkind = 'S' AND has_sequence_privilege(r, c.oid, 'USAGE, UPDATE')))),
          0::bigint, 'anon and authenticated can write no table and use no sequence');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p')
              AND has_table_privilege('authenticated', c.oid, 'SELECT') AND NOT c.relrowsecurity
              AND c.relname NOT IN ('products', 'categories')),
          NULL, 'every non-catalog table authenticated can read has row-level security');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND NOT c.relrowsecurity
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped)
              AND has_table_privilege('authenticated', c.oid, 'SELECT')),
          NULL, 'no readable table with a customer_id column lacks row-level security');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c, unnest(ARRAY['anon', 'authenticated']) r
            WHERE c.relnamespace IN ('elfsofa'::regnamespace, 'elfsofa_archive'::regnamespace) AND c.relkind IN ('v', 'm', 'f')
              AND has_table_privilege(r, c.oid, 'SELECT')),
          NULL, 'anon and authenticated read no view (views run as their owner and would bypass row-level security)');
SELECT ok(has_function_privilege('service_role', 'elfsofa.restock(text,integer,text,text)', 'EXECUTE')
          AND has_table_privilege('service_role', 'elfsofa.stock_ledger', 'SELECT, INSERT, UPDATE, DELETE'),
          'service_role gets everything');

-- probes as each role (each undone)
INSERT INTO elfsofa.products (sku, name, price) VALUES ('TAPSEC-1', 'tap cover', 100);
SELECT is(elfsofa.restock('TAPSEC-1', 4), 4, 'the owner restocks');
SELECT elfsofa.upsert_customer('tap-a@example.com', auth_user_id => 'a0000000-0000-4000-8000-00000000000a') AS cust_a \gset
SELECT elfsofa.upsert_customer('tap-b@example.com', auth_user_id => 'b0000000-0000-4000-8000-00000000000b') AS cust_b \gset
INSERT INTO elfsofa.orders (id, order_number, customer_id, total) VALUES (901, 'ELF-2026-000901', :'cust_a', 100), (902, 'ELF-2026-000902', :'cust_b', 100);
\set claims_a '{"role":"authenticated","sub":"a0000000-0000-4000-8000-00000000000a"}'
\set claims_a_forged '{"role":"service_role","sub":"a0000000-0000-4000-8000-00000000000a"}'

SELECT is(pg_temp.probe('anon', '{"role":"anon"}', $$SELECT elfsofa.available('TAPSEC-1')$$), '4', 'anon reads stock availability');
SELECT is(pg_temp.probe('anon', '{"role":"anon"}', $$SELECT count(*) FROM elfsofa.orders$$), '42501', 'anon cannot read orders');
SELECT is(pg_temp.probe('anon', '{"role":"anon"}', $$SELECT elfsofa.restock('TAPSEC-1', 1)$$), '42501', 'anon cannot restock');
SELECT is(pg_temp.probe('anon', '{"role":"anon"}', $$SELECT elfsofa.adjust_stock('TAPSEC-1', -1)$$), '42501', 'anon cannot adjust stock');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$SELECT elfsofa.adjust_stock('TAPSEC-1', -1)$$), '42501', 'a customer cannot adjust stock');
SELECT is(pg_temp.probe('anon', '{"role":"anon"}', $$INSERT INTO elfsofa.customers (email) VALUES ('x@example.com')$$), '42501', 'anon cannot write customers');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$SELECT string_agg(order_number, ',') FROM elfsofa.orders$$), 'ELF-2026-000901',
          'a customer reads only her own orders');
SELECT is(pg_temp.probe('authenticated', :'claims_a_forged', $$SELECT count(*) FROM elfsofa.orders$$), '1',
          'a forged role claim in the JWT does not widen access');
SELECT is(pg_temp.probe('authenticated', :'claims_a_forged', $$SELECT count(*) FROM elfsofa.customers$$), '1',
          'a customer reads only her own customer row');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$UPDATE elfsofa.orders SET status = 'cancelled' WHERE id = 901$$), '42501',
          'a customer cannot update even her own order directly');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$DELETE FROM elfsofa.orders WHERE id = 902$$), '42501',
          'a customer cannot delete another customer''s order');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$INSERT INTO elfsofa.stock_ledger (product_id, location, delta_on_hand, reason, actor) SELECT id, 'main', 1, 'adjust', 'me' FROM elfsofa.products$$), '42501',
          'a customer cannot write the stock ledger');
SELECT is(pg_temp.probe('authenticated', '{"role":"authenticated","sub":"not-a-uuid"}', $$SELECT count(*) FROM elfsofa.orders$$), '0',
          'a sub that is not a uuid sees nothing');
SELECT is(pg_temp.probe('authenticated', '', $$SELECT count(*) FROM elfsofa.orders$$), '0',
          'no claims at all sees nothing');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$SELECT elfsofa.rate_limit('user:b0000000-0000-4000-8000-00000000000b', 1, '1 hour')$$), '42501',
          'a customer cannot drain another user''s rate-limit bucket');
SELECT is(pg_temp.probe('authenticated', :'claims_a', $$SELECT elfsofa.grant_api()$$), '42501',
          'a customer cannot run grant_api()');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT count(*) FROM elfsofa.orders WHERE id IN (901, 902)$$), '2',
          'service_role reads every order');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT elfsofa.restock('TAPSEC-1', 1)$$), '5',
          'service_role restocks');
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT elfsofa.adjust_stock('TAPSEC-1', -1)$$), '3',
          'service_role adjusts stock');
-- the write guard holds even where a table privilege was granted by mistake
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE t.tgname = 'elfsofa_customer_guard' AND NOT t.tgisinternal AND NOT c.relispartition),
          ARRAY['cart_items', 'carts', 'customer_interactions', 'orders'], 'customer write guard on orders, carts, cart items, interactions');
GRANT INSERT ON elfsofa.customer_interactions TO authenticated;
SELECT is(pg_temp.probe('authenticated', :'claims_a', format($$INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel) VALUES (%L, 'spam', 'web')$$, :'cust_b')), '42501',
          'a mistaken INSERT grant still cannot write another customer''s interaction');
SELECT is(pg_temp.probe('authenticated', :'claims_a', format($$INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel) VALUES (%L, 'note', 'web')$$, :'cust_a')), '42501',
          '... nor her own: row-level security has no write policy');
REVOKE INSERT ON elfsofa.customer_interactions FROM authenticated;
SELECT is((SELECT array_agg(g.object_name ORDER BY g.object_name) FROM elfsofa.api_grants g
            WHERE g.object_kind = 'table' AND to_regclass('elfsofa.' || g.object_name) IS NOT NULL
              AND NOT has_table_privilege(g.role_name, 'elfsofa.' || g.object_name, g.privilege)),
          NULL, 'every installed table in api_grants is granted (none skipped for lack of row-level security)');
-- service_role made without BYPASSRLS still sees everything (grant_api adds a policy)
ALTER ROLE service_role NOBYPASSRLS;
SELECT is(pg_temp.probe('service_role', '{"role":"service_role"}', $$SELECT count(*) FROM elfsofa.orders WHERE id IN (901, 902)$$), '2',
          'service_role without BYPASSRLS reads every order through its policy');

SELECT * FROM finish();
ROLLBACK;
