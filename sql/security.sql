-- Supabase fit: grants, row-level security and caller identity, replayed the
-- way PostgREST talks to the database (connect as authenticator, switch role
-- inside a transaction, JWT claims in request.jwt.claims).
\i test/regress_setup.sql

-- Supabase's roles (created only if missing), then the grants for them.
\i test/supabase_roles.sql
SELECT elfsofa.grant_api() - 'grants' AS grant_api;

-- The shop, set up by the owner: two linked customers and one not linked.
INSERT INTO elfsofa.products (sku, name, price) VALUES ('SEC-L-GRY', 'L-shape cover, grey', 890), ('SEC-2-BLU', '2-seat cover, blue', 450);
SELECT elfsofa.restock('SEC-L-GRY', 10), elfsofa.restock('SEC-2-BLU', 5);
-- a retired product and a category: the storefront (RLS) shows active products only
INSERT INTO elfsofa.products (sku, name, price, is_active) VALUES ('SEC-OLD', 'retired cover', 100, false);
INSERT INTO elfsofa.categories (slug, name) VALUES ('sec-covers', 'Covers');
SELECT elfsofa.upsert_customer('ann@example.com', 'Ann', auth_user_id => 'aaaaaaaa-0000-4000-8000-000000000001') AS ann \gset
SELECT elfsofa.upsert_customer('bee@example.com', 'Bee', auth_user_id => 'bbbbbbbb-0000-4000-8000-000000000002') AS bee \gset
SELECT elfsofa.upsert_customer('cat@example.com', 'Cat') AS cat \gset
INSERT INTO elfsofa.orders (id, order_number, customer_id, total, created_at) VALUES
    (1, 'ELF-2026-000001', :'ann', 890, now()),
    (2, 'ELF-2026-000002', :'bee', 900, now());
INSERT INTO elfsofa.order_lines (order_id, line_no, product_id, sku, location, quantity, unit_price, line_total, created_at)
SELECT o.id, 1, p.id, p.sku, 'main', o.id, p.price, o.id * p.price, o.created_at
  FROM elfsofa.orders o JOIN elfsofa.products p ON p.sku = CASE o.id WHEN 1 THEN 'SEC-L-GRY' ELSE 'SEC-2-BLU' END;
INSERT INTO elfsofa.payments (order_id, order_created_at, method, amount)
SELECT id, created_at, 'promptpay', total FROM elfsofa.orders;
INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel) VALUES (:'ann', 'question', 'line'), (:'bee', 'complaint', 'email');

-- JWTs as Supabase Auth issues them.  Ann's carries a forged "role" claim.
\set jwt_ann '{"aud":"authenticated","role":"service_role","sub":"aaaaaaaa-0000-4000-8000-000000000001","email":"ann@example.com"}'
\set jwt_bee '{"aud":"authenticated","role":"authenticated","sub":"bbbbbbbb-0000-4000-8000-000000000002","email":"bee@example.com"}'
\set jwt_new '{"aud":"authenticated","role":"authenticated","sub":"dddddddd-0000-4000-8000-000000000004","email":"Dee@Example.com"}'
\set jwt_anon '{"role":"anon"}'

-- PostgREST connects as authenticator, which can do nothing by itself.
SET SESSION AUTHORIZATION authenticator;
SELECT count(*) FROM elfsofa.products;
:err

---------------------------------------------------------------------------
-- anon: the public catalog only
---------------------------------------------------------------------------
BEGIN;
SELECT set_config('role', 'anon', true) AS role, set_config('request.jwt.claims', :'jwt_anon', true) IS NOT NULL AS claims,
       set_config('request.headers', '{"x-forwarded-for":"10.0.0.1, 203.0.113.7"}', true) IS NOT NULL AS headers;
SET LOCAL ROLE anon;
SELECT elfsofa.api_guard();
SELECT sku, price FROM elfsofa.products ORDER BY sku;
SELECT slug FROM elfsofa.categories ORDER BY slug;
SELECT elfsofa.available('SEC-L-GRY');
SAVEPOINT s;
SELECT count(*) FROM elfsofa.orders;
:err
ROLLBACK TO s;
SELECT count(*) FROM elfsofa.customers;
:err
ROLLBACK TO s;
INSERT INTO elfsofa.products (sku, name, price) VALUES ('ANON-1', 'sneaky', 1);
:err
ROLLBACK TO s;
SELECT elfsofa.restock('SEC-L-GRY', 100);
:err
ROLLBACK TO s;
SELECT elfsofa.upsert_customer('anon@example.com');
:err
ROLLBACK TO s;
SELECT elfsofa.register_customer('Anon');
:err
ROLLBACK TO s;
SELECT elfsofa.rate_limit('user:aaaaaaaa-0000-4000-8000-000000000001', 1, '1 hour');
:err
ROLLBACK;

---------------------------------------------------------------------------
-- authenticated: Ann sees her own rows only, whatever her JWT's role claim says
---------------------------------------------------------------------------
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role, set_config('request.jwt.claims', :'jwt_ann', true) IS NOT NULL AS claims;
SET LOCAL ROLE authenticated;
SELECT current_user, elfsofa.current_customer_id() = :'ann' AS is_ann;
SELECT email, full_name FROM elfsofa.customers;
SELECT order_number, total FROM elfsofa.orders;
SELECT order_id, sku, quantity FROM elfsofa.order_lines;
SELECT order_id, amount FROM elfsofa.payments;
SELECT kind FROM elfsofa.customer_interactions;
SELECT sku FROM elfsofa.products ORDER BY sku;
-- asking for Bee's rows by key finds nothing
SELECT count(*) FROM elfsofa.orders WHERE id = 2;
SELECT count(*) FROM elfsofa.customers WHERE id = :'bee';
-- no direct writes, not even to her own rows
SAVEPOINT s;
INSERT INTO elfsofa.orders (order_number, customer_id, total) VALUES ('ELF-2026-000099', :'ann', 0);
:err
ROLLBACK TO s;
UPDATE elfsofa.orders SET total = 0 WHERE id = 1;
:err
ROLLBACK TO s;
DELETE FROM elfsofa.order_lines;
:err
ROLLBACK TO s;
UPDATE elfsofa.customers SET email = 'mine@example.com';
:err
ROLLBACK TO s;
INSERT INTO elfsofa.customer_interactions (customer_id, kind, channel) VALUES (:'bee', 'spam', 'web');
:err
ROLLBACK TO s;
UPDATE elfsofa.products SET price = 1;
:err
ROLLBACK TO s;
SELECT count(*) FROM elfsofa.stock_levels;
:err
ROLLBACK TO s;
SELECT count(*) FROM elfsofa.idempotency_keys;
:err
ROLLBACK TO s;
SELECT elfsofa.restock('SEC-L-GRY', 1);
:err
ROLLBACK TO s;
SELECT elfsofa.upsert_customer('bee@example.com', auth_user_id => 'aaaaaaaa-0000-4000-8000-000000000001');
:err
ROLLBACK TO s;
SELECT elfsofa.grant_api();
:err
ROLLBACK TO s;
-- catalog reads are fine
SELECT elfsofa.available('SEC-2-BLU');
COMMIT;

-- Bee sees Bee's
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role, set_config('request.jwt.claims', :'jwt_bee', true) IS NOT NULL AS claims;
SET LOCAL ROLE authenticated;
SELECT order_number FROM elfsofa.orders;
SELECT order_id, sku FROM elfsofa.order_lines;
COMMIT;

-- a signed-in user with no customer row sees nothing, and registers
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role, set_config('request.jwt.claims', :'jwt_new', true) IS NOT NULL AS claims;
SET LOCAL ROLE authenticated;
SELECT elfsofa.current_customer_id() IS NULL AS no_customer, (SELECT count(*) FROM elfsofa.orders) AS orders, (SELECT count(*) FROM elfsofa.customers) AS customers;
SELECT elfsofa.register_customer('Dee', '+66 81 234 5678') IS NOT NULL AS registered;
SELECT email, full_name, phone, auth_user_id FROM elfsofa.customers;
SELECT elfsofa.register_customer(phone => '+66 81 000 0000') = elfsofa.current_customer_id() AS same_customer;
SELECT email, full_name, phone FROM elfsofa.customers;
SAVEPOINT s;
SELECT elfsofa.register_customer(phone => 'not a phone');
:err
ROLLBACK TO s;
COMMIT;

-- registering with an e-mail that another auth user owns is refused; without a sub too
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role,
       set_config('request.jwt.claims', '{"role":"authenticated","sub":"eeeeeeee-0000-4000-8000-000000000005","email":"ANN@example.com"}', true) IS NOT NULL AS claims;
SET LOCAL ROLE authenticated;
SELECT elfsofa.register_customer('Not Ann');
:err
ROLLBACK;
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role, set_config('request.jwt.claims', '{"role":"authenticated"}', true) IS NOT NULL AS claims;
SET LOCAL ROLE authenticated;
SELECT elfsofa.register_customer('Nobody');
:err
ROLLBACK;
RESET SESSION AUTHORIZATION;
SELECT email, full_name, auth_user_id IS NOT NULL AS linked FROM elfsofa.customers ORDER BY email;

---------------------------------------------------------------------------
-- service_role: everything, all rows
---------------------------------------------------------------------------
SET SESSION AUTHORIZATION authenticator;
BEGIN;
SELECT set_config('role', 'service_role', true) AS role, set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS claims;
SET LOCAL ROLE service_role;
SELECT order_number FROM elfsofa.orders ORDER BY id;
SELECT count(*) AS lines FROM elfsofa.order_lines;
SELECT elfsofa.restock('SEC-2-BLU', 1);
SELECT sku, is_active FROM elfsofa.products ORDER BY sku;
UPDATE elfsofa.products SET is_active = true WHERE sku = 'SEC-OLD' RETURNING sku, is_active;
INSERT INTO elfsofa.categories (slug, name) VALUES ('sec-new', 'New') RETURNING slug;
ROLLBACK;
RESET SESSION AUTHORIZATION;

---------------------------------------------------------------------------
-- PUBLIC can execute nothing; every SECURITY DEFINER function has a fixed search_path
---------------------------------------------------------------------------
SELECT count(*) AS public_executable
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace IN ('elfsofa'::regnamespace, 'elfsofa_internal'::regnamespace) AND a.grantee = 0;
-- SECURITY DEFINER lives only in elfsofa_internal; elfsofa (exposed) calls it through wrappers
SELECT p.oid::regprocedure AS security_definer, p.proconfig
  FROM pg_proc p WHERE p.pronamespace IN ('elfsofa'::regnamespace, 'elfsofa_internal'::regnamespace) AND p.prosecdef
 ORDER BY p.proname;
SELECT p.oid::regprocedure AS wrapper, p.prosrc
  FROM pg_proc p WHERE p.pronamespace = 'elfsofa'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_proc i WHERE i.pronamespace = 'elfsofa_internal'::regnamespace AND i.proname = p.proname)
 ORDER BY p.proname;
SELECT has_schema_privilege('public', 'elfsofa_internal', 'USAGE') AS public_uses_internal;
SELECT c.relname AS row_level_security
  FROM pg_class c WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relrowsecurity ORDER BY 1;
-- what each role may do, from the catalog
SELECT r AS role, array_agg(p.proname ORDER BY p.proname) AS may_execute
  FROM unnest(ARRAY['anon', 'authenticated']) r, pg_proc p
 WHERE p.pronamespace = 'elfsofa'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')
 GROUP BY r ORDER BY r;
SELECT r AS role, array_agg(p.proname ORDER BY p.proname) AS may_execute_internal
  FROM unnest(ARRAY['anon', 'authenticated']) r, pg_proc p
 WHERE p.pronamespace = 'elfsofa_internal'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')
 GROUP BY r ORDER BY r;
SELECT r AS role, array_agg(c.relname ORDER BY c.relname) AS may_select
  FROM unnest(ARRAY['anon', 'authenticated']) r, pg_class c
 WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND has_table_privilege(r, c.oid, 'SELECT')
 GROUP BY r ORDER BY r;
SELECT count(*) AS writable_by_customers
  FROM unnest(ARRAY['anon', 'authenticated']) r, pg_class c
 WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p')
   AND has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE');
-- grant_api() is idempotent
SELECT elfsofa.grant_api() = elfsofa.grant_api() AS idempotent;
