-- elfsofa install script, part 98 (runs last): who may call and see what.
-- Supabase's roles (anon, authenticated, service_role) may not exist here:
-- everything role-specific happens in grant_api(), which this script calls
-- only when they do.  PUBLIC gets nothing.  (src/customers/, src/security/)

---------------------------------------------------------------------------
-- The privileged schema.  Every SECURITY DEFINER function lives here, and
-- @extschema@ holds a SECURITY INVOKER wrapper of the same name, signature,
-- defaults and comment (see the end of this file): Supabase exposes
-- @extschema@ to its Data API, and its linter wants no SECURITY DEFINER
-- function in an exposed schema.  Never expose elfsofa_internal.
---------------------------------------------------------------------------
CREATE SCHEMA elfsofa_internal;
COMMENT ON SCHEMA elfsofa_internal IS
  'elfsofa''s SECURITY DEFINER functions, called through their SECURITY INVOKER wrappers of the same name in schema elfsofa. Not for the Data API: never add it to the exposed schemas (pgrst.db_schemas).';

---------------------------------------------------------------------------
-- Caller identity
---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.current_customer_id()
RETURNS uuid
LANGUAGE c STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'elfsofa_current_customer_id';
COMMENT ON FUNCTION @extschema@.current_customer_id() IS
  'The customer whose auth_user_id is the JWT sub of this request, or NULL. Used by the row-level security policies; ignores every other claim (a "role" claim never widens access).';

CREATE FUNCTION @extschema@.register_customer(full_name text DEFAULT NULL, phone text DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'elfsofa_register_customer';
COMMENT ON FUNCTION @extschema@.register_customer(text, text) IS
  'A signed-in user creates or updates their own customer row: e-mail and auth_user_id come from the JWT (email, sub), never from arguments. 42501 without a sub, 22023 without an email claim or on bad input, PT409 when the e-mail belongs to another auth user.';

---------------------------------------------------------------------------
-- Rate limits
---------------------------------------------------------------------------
CREATE UNLOGGED TABLE @extschema@.rate_limits (
    bucket      text PRIMARY KEY,
    tokens      double precision NOT NULL,
    allowed     boolean NOT NULL,
    updated_at  timestamptz NOT NULL
);
COMMENT ON TABLE @extschema@.rate_limits IS
  'Token buckets of rate_limit()/api_guard() when elfsofa is not in shared_preload_libraries (or elfsofa.rate_limit_store = table). Unlogged: emptied by a crash, which only forgives callers.';

CREATE FUNCTION @extschema@.rate_limit(bucket text, max_requests integer, per interval)
RETURNS boolean
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_rate_limit';
COMMENT ON FUNCTION @extschema@.rate_limit(text, integer, interval) IS
  'Token bucket: true when bucket still has a token (bursts of max_requests, refilled at max_requests per per), false when the caller should be refused. Shared memory when preloaded, else table rate_limits. 22023 on bad arguments.';

CREATE FUNCTION @extschema@.rate_limit_reset(bucket text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_rate_limit_reset';
COMMENT ON FUNCTION @extschema@.rate_limit_reset(text) IS
  'Forgives one bucket (e.g. ''user:<sub>'' or ''ip:<address>''), or all buckets when NULL; returns how many were dropped.';

CREATE FUNCTION @extschema@.api_guard()
RETURNS void
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'elfsofa_api_guard';
COMMENT ON FUNCTION @extschema@.api_guard() IS
  'PostgREST db-pre-request hook: limits each JWT sub to elfsofa.rate_limit_per_minute and each client IP without a sub (the address the trusted proxy put in elfsofa.rate_limit_client_header, default the last x-forwarded-for entry; callers without one share one bucket) to elfsofa.rate_limit_anon_per_minute; PT429 with HINT "Retry after N seconds" when exceeded; 22023 when content-length exceeds elfsofa.max_request_bytes. Roles with BYPASSRLS (service_role) are exempt.';

---------------------------------------------------------------------------
-- The API surface, as data: grant_api() grants exactly these rows.
---------------------------------------------------------------------------
CREATE VIEW @extschema@.api_grants (role_name, object_kind, object_name, privilege, run_as_owner) AS
SELECT * FROM (VALUES
    -- anyone, signed in or not: the public catalog and the pre-request guard
    ('anon',          'table',    'products',              'SELECT',  false),
    ('anon',          'table',    'categories',            'SELECT',  false),
    ('anon',          'function', 'available',             'EXECUTE', true),
    ('anon',          'function', 'api_guard',             'EXECUTE', true),
    ('authenticated', 'table',    'products',              'SELECT',  false),
    ('authenticated', 'table',    'categories',            'SELECT',  false),
    ('authenticated', 'function', 'available',             'EXECUTE', true),
    ('authenticated', 'function', 'api_guard',             'EXECUTE', true),
    -- signed-in customers: their own rows (row-level security) and the shop RPCs
    ('authenticated', 'table',    'customers',             'SELECT',  false),
    ('authenticated', 'table',    'orders',                'SELECT',  false),
    ('authenticated', 'table',    'order_lines',           'SELECT',  false),
    ('authenticated', 'table',    'payments',              'SELECT',  false),
    ('authenticated', 'table',    'shipments',             'SELECT',  false),
    ('authenticated', 'table',    'customer_interactions', 'SELECT',  false),
    ('authenticated', 'table',    'carts',                 'SELECT',  false),
    ('authenticated', 'table',    'cart_items',            'SELECT',  false),
    ('authenticated', 'function', 'current_customer_id',   'EXECUTE', true),
    ('authenticated', 'function', 'register_customer',     'EXECUTE', true),
    ('authenticated', 'function', 'process_order',         'EXECUTE', true),
    ('authenticated', 'function', 'cart_add',              'EXECUTE', true),
    ('authenticated', 'function', 'cart_remove',           'EXECUTE', true),
    ('authenticated', 'function', 'cart_checkout',         'EXECUTE', true),
    ('authenticated', 'function', 'cart_get',              'EXECUTE', true)
) AS g(role_name, object_kind, object_name, privilege, run_as_owner);
COMMENT ON VIEW @extschema@.api_grants IS
  'What anon and authenticated may use (service_role gets everything). Functions by name (every signature), tables by name; names not (yet) installed are skipped, and a non-catalog table is granted only while it has row-level security. run_as_owner: the function runs SECURITY DEFINER with a fixed search_path, so callers need no table privileges; it lives in schema elfsofa_internal and is called through the SECURITY INVOKER wrapper of the same name in elfsofa (both are granted). A view, not a table: the API surface changes with the extension version, and pg_dump has no rows to restore twice.';

---------------------------------------------------------------------------
-- Row-level security: a customer sees only their own rows.  Policies are for
-- PUBLIC, so they need no role to exist; table privileges decide who gets
-- this far, and the table owner (SECURITY DEFINER RPCs) and BYPASSRLS roles
-- (service_role) are not filtered.  No write policies: writes go through RPCs.
---------------------------------------------------------------------------
DO $rls$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('customers', 'id = (SELECT @extschema@.current_customer_id())'),
            ('customer_interactions', 'customer_id = (SELECT @extschema@.current_customer_id())'),
            ('orders', 'customer_id = (SELECT @extschema@.current_customer_id())'),
            ('order_lines', 'EXISTS (SELECT 1 FROM @extschema@.orders o WHERE o.id = order_lines.order_id AND o.created_at = order_lines.created_at AND o.customer_id = (SELECT @extschema@.current_customer_id()))'),
            ('payments', 'EXISTS (SELECT 1 FROM @extschema@.orders o WHERE o.id = payments.order_id AND o.created_at = payments.order_created_at AND o.customer_id = (SELECT @extschema@.current_customer_id()))'),
            ('shipments', 'EXISTS (SELECT 1 FROM @extschema@.orders o WHERE o.id = shipments.order_id AND o.created_at = shipments.order_created_at AND o.customer_id = (SELECT @extschema@.current_customer_id()))'),
            ('carts', 'customer_id = (SELECT @extschema@.current_customer_id())'),
            ('cart_items', 'EXISTS (SELECT 1 FROM @extschema@.carts c WHERE c.id = cart_items.cart_id AND c.customer_id = (SELECT @extschema@.current_customer_id()))')
        ) AS t(tbl, pred)
    LOOP
        CONTINUE WHEN to_regclass(format('@extschema@.%I', r.tbl)) IS NULL;
        BEGIN
            EXECUTE format('CREATE POLICY own_rows ON @extschema@.%I FOR SELECT TO PUBLIC USING (%s)', r.tbl, r.pred);
            EXECUTE format('COMMENT ON POLICY own_rows ON @extschema@.%I IS %L', r.tbl,
                           'A customer (JWT sub = customers.auth_user_id) reads only their own rows.');
            EXECUTE format('ALTER TABLE @extschema@.%I ENABLE ROW LEVEL SECURITY', r.tbl);
        EXCEPTION WHEN undefined_column OR undefined_table THEN
            -- the table changed shape: no policy, so grant_api() will not grant it
            NULL;
        END;
    END LOOP;
END
$rls$;

-- The catalog: everyone the table privileges let in (anon, authenticated)
-- reads the storefront, i.e. active products and every category.  No write
-- policies: the owner and BYPASSRLS roles (service_role) manage the catalog.
CREATE POLICY storefront ON @extschema@.products FOR SELECT TO PUBLIC USING (is_active);
COMMENT ON POLICY storefront ON @extschema@.products IS 'The storefront reads active products only.';
ALTER TABLE @extschema@.products ENABLE ROW LEVEL SECURITY;
CREATE POLICY storefront ON @extschema@.categories FOR SELECT TO PUBLIC USING (true);
COMMENT ON POLICY storefront ON @extschema@.categories IS 'The storefront reads every category.';
ALTER TABLE @extschema@.categories ENABLE ROW LEVEL SECURITY;

---------------------------------------------------------------------------
-- Writes: whichever function writes, a non-privileged caller (anon,
-- authenticated, also inside SECURITY DEFINER RPCs) may only touch rows of
-- their own customer.  Privileged roles (superuser, BYPASSRLS, service_role)
-- pass at the cost of one role check.
---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.customer_row_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'elfsofa_customer_row_guard';
COMMENT ON FUNCTION @extschema@.customer_row_guard() IS
  'BEFORE ROW trigger (column [, parent table]): 42501 when a non-privileged caller inserts, updates or deletes a row whose customer (the column, or the customer_id of the parent row it references) is not the caller''s JWT customer.';

DO $guard$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('orders', 'customer_id', NULL),
            ('customer_interactions', 'customer_id', NULL),
            ('carts', 'customer_id', NULL),
            ('cart_items', 'cart_id', 'carts')
        ) AS t(tbl, col, parent)
    LOOP
        CONTINUE WHEN to_regclass(format('@extschema@.%I', r.tbl)) IS NULL
                   OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid = format('@extschema@.%I', r.tbl)::regclass
                                     AND a.attname = r.col AND NOT a.attisdropped);
        EXECUTE format('CREATE TRIGGER elfsofa_customer_guard BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.customer_row_guard(%L%s)',
                       r.tbl, r.col, CASE WHEN r.parent IS NULL THEN '' ELSE format(', %L', r.parent) END);
    END LOOP;
END
$guard$;

---------------------------------------------------------------------------
-- Functions callers use without table privileges run as the owner, with a
-- search_path nobody can plant objects in.  Applied to other areas' functions
-- here (ALTER FUNCTION) so their files stay theirs.
---------------------------------------------------------------------------
DO $definer$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN @extschema@.api_grants g ON g.object_kind = 'function' AND g.object_name = p.proname
         WHERE p.pronamespace = '@extschema@'::regnamespace AND g.run_as_owner
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$definer$;

---------------------------------------------------------------------------
-- The SECURITY DEFINER functions move to elfsofa_internal; @extschema@ keeps
-- a SECURITY INVOKER wrapper with the same signature, defaults, volatility
-- and comment, so `SELECT @extschema@.process_order(...)` and PostgREST's
-- rpc('process_order', ...) stay as they were.  The wrapper is one SELECT in
-- LANGUAGE sql with no SET clause: the planner inlines it, so a call costs
-- what it cost before.  The functions keep their OIDs (policies and other
-- references follow them) and their C symbols.
---------------------------------------------------------------------------
DO $wrap$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.oid::regprocedure::text AS sig,
               pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_result(p.oid) AS result,
               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END AS vol,
               CASE WHEN p.proisstrict THEN ' STRICT' ELSE '' END AS strictness,
               CASE p.proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END AS par,
               (SELECT string_agg('$' || i, ', ' ORDER BY i) FROM generate_series(1, p.pronargs) i) AS call_args,
               pg_catalog.obj_description(p.oid, 'pg_proc') AS descr,
               -- who may call it now (an updated database: grants made on 1.0)
               (SELECT array_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END)
                  FROM pg_catalog.aclexplode(p.proacl) a
                 WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) AS callers
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = '@extschema@'::regnamespace AND p.prosecdef
         ORDER BY p.proname
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET SCHEMA elfsofa_internal', f.sig);
        EXECUTE format('CREATE FUNCTION @extschema@.%I(%s) RETURNS %s LANGUAGE sql %s%s PARALLEL %s SECURITY INVOKER AS %L',
                       f.proname, f.args, f.result, f.vol, f.strictness, f.par,
                       format('SELECT elfsofa_internal.%I(%s)', f.proname, coalesce(f.call_args, '')));
        EXECUTE format('COMMENT ON FUNCTION @extschema@.%I(%s) IS %L', f.proname,
                       pg_catalog.pg_get_function_identity_arguments(f.oid), f.descr);
        -- whoever could call the function can call the wrapper, and reach the body
        IF f.callers IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION @extschema@.%I(%s) TO %s', f.proname,
                           pg_catalog.pg_get_function_identity_arguments(f.oid), array_to_string(f.callers, ', '));
            EXECUTE format('GRANT USAGE ON SCHEMA elfsofa_internal TO %s', array_to_string(f.callers, ', '));
        END IF;
        EXECUTE format('COMMENT ON FUNCTION elfsofa_internal.%I(%s) IS %L', f.proname,
                       pg_catalog.pg_get_function_identity_arguments(f.oid),
                       format('Runs as the owner (SECURITY DEFINER); not for the Data API. Callers use @extschema@.%I(), which calls this. %s',
                              f.proname, f.descr));
    END LOOP;
END
$wrap$;

-- Views of the exposed schema run with the caller's privileges and row-level
-- security (security_invoker exists from PostgreSQL 15 on).
DO $views$
DECLARE
    v regclass;
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int >= 150000 THEN
        FOR v IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
                  WHERE c.relnamespace = '@extschema@'::regnamespace AND c.relkind = 'v' ORDER BY c.relname
        LOOP
            EXECUTE format('ALTER VIEW %s SET (security_invoker = on)', v);
        END LOOP;
    END IF;
END
$views$;

---------------------------------------------------------------------------
-- grant_api(): (re)applies the grants for whichever Supabase roles exist.
---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.grant_api()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    ext_schema  CONSTANT text := '@extschema@';
    roles       text[];
    missing     text[];
    r           record;
    n           integer := 0;
BEGIN
    SELECT array_agg(x ORDER BY x) FILTER (WHERE to_regrole(x) IS NOT NULL),
           array_agg(x ORDER BY x) FILTER (WHERE to_regrole(x) IS NULL)
      INTO roles, missing
      FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) AS x;

    -- Start clean for the customer-facing roles, so a name removed from
    -- api_grants loses its grant on the next run.
    FOR r IN SELECT x FROM unnest(roles) AS x WHERE x <> 'service_role' LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', ext_schema, r.x);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', ext_schema, r.x);
        EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA %I, elfsofa_internal FROM %I', ext_schema, r.x);
        EXECUTE format('GRANT USAGE ON SCHEMA %I, elfsofa_internal TO %I', ext_schema, r.x);
    END LOOP;

    -- A function of the list: its wrapper in ext_schema and, for run_as_owner
    -- ones, the SECURITY DEFINER function in elfsofa_internal the wrapper calls.
    FOR r IN
        SELECT g.role_name, g.privilege, p.oid::regprocedure::text AS obj, 'FUNCTION' AS kind
          FROM @extschema@.api_grants g
          JOIN pg_catalog.pg_proc p ON p.proname = g.object_name
                                   AND p.pronamespace IN (ext_schema::regnamespace, 'elfsofa_internal'::regnamespace)
         WHERE g.object_kind = 'function' AND g.role_name = ANY (roles)
        UNION ALL
        SELECT g.role_name, g.privilege, c.oid::regclass::text, 'TABLE'
          FROM @extschema@.api_grants g
          JOIN pg_catalog.pg_class c ON c.relname = g.object_name AND c.relnamespace = ext_schema::regnamespace
         WHERE g.object_kind = 'table' AND g.role_name = ANY (roles)
           AND c.relrowsecurity  -- fail closed
    LOOP
        EXECUTE format('GRANT %s ON %s %s TO %I', r.privilege, r.kind, r.obj, r.role_name);
        n := n + 1;
    END LOOP;

    IF 'service_role' = ANY (roles) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I, elfsofa_archive, elfsofa_internal TO service_role', ext_schema);
        -- Row privileges only, never TRIGGER, TRUNCATE or REFERENCES: a trigger
        -- service_role attached to a table that SECURITY DEFINER code writes
        -- would run as the extension's owner.  The audit log and the partition
        -- sets (retention decides what history is dropped) are read-only to it:
        -- they change only through elfsofa's own functions.
        EXECUTE format('REVOKE TRIGGER, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA %I FROM service_role', ext_schema);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO service_role', ext_schema);
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.audit_log, %I.partition_sets FROM service_role',
                       ext_schema, ext_schema);
        EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO service_role', ext_schema);
        EXECUTE format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA %I, elfsofa_internal TO service_role', ext_schema);
        EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA elfsofa_archive TO service_role';
        -- Supabase's service_role has BYPASSRLS; a policy covers one made without it.
        FOR r IN
            SELECT c.relname FROM pg_catalog.pg_class c
             WHERE c.relnamespace = ext_schema::regnamespace AND c.relrowsecurity
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                                WHERE pol.polrelid = c.oid AND pol.polname = 'service_role_all')
        LOOP
            EXECUTE format('CREATE POLICY service_role_all ON %I.%I TO service_role USING (true) WITH CHECK (true)',
                           ext_schema, r.relname);
        END LOOP;
    END IF;

    RETURN jsonb_build_object('roles', to_jsonb(coalesce(roles, '{}')),
                              'missing_roles', to_jsonb(coalesce(missing, '{}')),
                              'grants', n);
END
$fn$;
COMMENT ON FUNCTION @extschema@.grant_api() IS
  'Grants the API (table api_grants) to anon and authenticated (a function: its wrapper in elfsofa and its SECURITY DEFINER body in elfsofa_internal; USAGE on both schemas), and to service_role row privileges on every table (read-only audit_log and partition_sets; never TRIGGER, TRUNCATE or REFERENCES) and every function of elfsofa and elfsofa_internal, for whichever of these roles exist; revokes what api_grants no longer lists. Idempotent. Run after creating the roles or adding functions; CREATE EXTENSION runs it too.';

---------------------------------------------------------------------------
-- Nothing for PUBLIC (functions are executable by PUBLIC unless revoked).
---------------------------------------------------------------------------
REVOKE ALL ON ALL ROUTINES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA elfsofa_archive FROM PUBLIC;
REVOKE ALL ON SCHEMA elfsofa_archive FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA elfsofa_internal FROM PUBLIC;
REVOKE ALL ON SCHEMA elfsofa_internal FROM PUBLIC;

SELECT @extschema@.grant_api();
