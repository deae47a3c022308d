-- elfsofa 1.0 -> 1.1 (ALTER EXTENSION elfsofa UPDATE).
--
-- 1.0 is the install script users have (src/sql/versions/elfsofa--1.0.sql,
-- frozen); every SQL change since lives here, and a new install runs the
-- current script (src/sql/*.sql) instead.  The C library keeps every entry
-- point a 1.0 definition names, with the same meaning, so a 1.0 database works
-- against the 1.1 library before and after this script runs.
\echo Use "ALTER EXTENSION elfsofa UPDATE TO '1.1'" to load this file. \quit

-- 1.1 also changed the C library (its layout, order numbers' year under
-- elfsofa.order_number_timezone, the restore hook) and the install script's
-- restore branch, which runs only in CREATE EXTENSION.

-- grant_api(): service_role no longer gets ALL on the tables (TRIGGER let it
-- run code as the extension's owner); audit_log and partition_sets are
-- read-only to it.  Re-run, it takes back what 1.0 granted.
CREATE OR REPLACE FUNCTION @extschema@.grant_api()
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
        EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA %I FROM %I', ext_schema, r.x);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', ext_schema, r.x);
    END LOOP;

    FOR r IN
        SELECT g.role_name, g.privilege, p.oid::regprocedure::text AS obj, 'FUNCTION' AS kind
          FROM @extschema@.api_grants g
          JOIN pg_catalog.pg_proc p ON p.proname = g.object_name AND p.pronamespace = ext_schema::regnamespace
         WHERE g.object_kind = 'function' AND g.role_name = ANY (roles)
        UNION ALL
        SELECT g.role_name, g.privilege, c.oid::regclass::text, 'TABLE'
          FROM @extschema@.api_grants g
          JOIN pg_catalog.pg_class c ON c.relname = g.object_name AND c.relnamespace = ext_schema::regnamespace
         WHERE g.object_kind = 'table' AND g.role_name = ANY (roles)
           AND (c.relrowsecurity OR g.object_name IN ('products', 'categories'))  -- fail closed
    LOOP
        EXECUTE format('GRANT %s ON %s %s TO %I', r.privilege, r.kind, r.obj, r.role_name);
        n := n + 1;
    END LOOP;

    IF 'service_role' = ANY (roles) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I, elfsofa_archive TO service_role', ext_schema);
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
        EXECUTE format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA %I TO service_role', ext_schema);
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
  'Grants the API (table api_grants) to anon and authenticated, and to service_role row privileges on every table (read-only audit_log and partition_sets; never TRIGGER, TRUNCATE or REFERENCES) and every function, for whichever of these roles exist; revokes what api_grants no longer lists. Idempotent. Run after creating the roles or adding functions; CREATE EXTENSION runs it too.';
-- Hot SKUs (issue 20): a product's stock at a location may be split over
-- bucket rows (set_stock_buckets) so concurrent orders lock different rows.
ALTER TABLE @extschema@.products
    ADD COLUMN stock_buckets smallint NOT NULL DEFAULT 1 CHECK (stock_buckets BETWEEN 1 AND 64);
ALTER TABLE @extschema@.stock_levels
    ADD COLUMN bucket smallint NOT NULL DEFAULT 0 CHECK (bucket BETWEEN 0 AND 63),
    DROP CONSTRAINT stock_levels_pkey,
    ADD CONSTRAINT stock_levels_pkey PRIMARY KEY (product_id, location, bucket);
COMMENT ON COLUMN @extschema@.stock_levels.bucket IS 'A hot product''s stock at one location is split over bucket rows 0..stock_buckets-1 (set_stock_buckets) so concurrent orders lock different rows; a location''s stock is the sum of its buckets. Other products have bucket 0 only.';
COMMENT ON COLUMN @extschema@.products.stock_buckets IS 'How many bucket rows each location''s stock of this product is split into (1: not hot); set with set_stock_buckets.';
CREATE FUNCTION @extschema@.set_stock_buckets(sku text, buckets integer)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_set_stock_buckets';
COMMENT ON FUNCTION @extschema@.set_stock_buckets(text, integer) IS
  'Marks sku hot (buckets 2..64) or not (1): splits its stock at every location into that many bucket rows, the free units spread evenly, so concurrent orders of it lock different rows. Briefly locks stock_levels against all writers. Returns buckets. 22023 on bad input, PT404 on unknown sku.';
REVOKE ALL ON FUNCTION @extschema@.set_stock_buckets(text, integer) FROM PUBLIC;

-- Every stock change is announced (issue 17), a counted correction too.
CREATE FUNCTION @extschema@.adjust_stock(sku text, delta integer, location text DEFAULT 'main', note text DEFAULT NULL)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'elfsofa_adjust_stock';
COMMENT ON FUNCTION @extschema@.adjust_stock(text, integer, text, text) IS
  'Corrects the on-hand count of sku at location by delta (-100000..100000, not 0), e.g. after a stock count; writes one stock_ledger row (reason adjust) and an inventory.updated event; returns the new on-hand count. 22023 on bad input, PT404 on unknown sku or a location without stock of it, PT409 when fewer units than reserved would remain.';
REVOKE ALL ON FUNCTION @extschema@.adjust_stock(text, integer, text, text) FROM PUBLIC;

SELECT @extschema@.grant_api();

-- The partition sets' settings are audited (retention decides what history is
-- dropped); maintenance's bookkeeping columns are not.
SELECT @extschema@.enable_audit('@extschema@.partition_sets', ARRAY['last_run', 'last_error']);

-- Lean orders: the INSERTs of orders, order lines and payments are recorded by
-- key only (trigger option @insert_key); audit_history() reads a row's first
-- version back from the table with the new audit_row_image().
COMMENT ON FUNCTION @extschema@.audit_trigger() IS 'Generic audit trigger (AFTER ROW insert/update/delete, AFTER STATEMENT truncate); its arguments are the excluded columns as "attnum:name" (attnum survives a rename), and the option @insert_key (INSERTs recorded by key only). Attach with enable_audit.';
CREATE FUNCTION @extschema@.audit_row_image(tbl regclass, pk jsonb)
RETURNS jsonb LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'es_audit_row_image';
COMMENT ON FUNCTION @extschema@.audit_row_image(regclass, jsonb) IS 'The row of audited table tbl whose primary key is pk, as its audit rows show it (excluded columns left out), or NULL when there is none; read with the caller''s rights. audit_history starts a story whose INSERT was recorded by key only with it.';

-- Stock changes of orders (reservations; cancels, shipments, returns and
-- expiries of products that are not hot) are recorded by their stock_ledger
-- rows alone, which carry an audit id and the
-- audit facts; audit_history and audit_summary read them from there.
ALTER TABLE @extschema@.stock_ledger
    ADD COLUMN audit_id bigint,
    ADD COLUMN txid bigint,
    ADD COLUMN db_user text,
    ADD COLUMN actor_role text,
    ADD COLUMN application_name text,
    ADD COLUMN bucket smallint;
COMMENT ON COLUMN @extschema@.stock_ledger.audit_id IS 'Set when this row is also the audit record of its stock_levels UPDATE (process_order''s reservation on one stock row, a hot product''s bucket too; for a product that is not hot also the cancel, ship, return or expiry of an order''s stock): an id from audit_log''s sequence; audit_log has no row for that UPDATE, and audit_history / audit_summary show it from here. NULL: audit_log recorded the stock change itself.';
COMMENT ON COLUMN @extschema@.stock_ledger.txid IS 'With audit_id: the top-level transaction id, as audit_log.txid.';
COMMENT ON COLUMN @extschema@.stock_ledger.db_user IS 'With audit_id: the database user, as audit_log.db_user.';
COMMENT ON COLUMN @extschema@.stock_ledger.actor_role IS 'With audit_id: the JWT role claim, as audit_log.actor_role.';
COMMENT ON COLUMN @extschema@.stock_ledger.application_name IS 'With audit_id: application_name, as audit_log.application_name.';
COMMENT ON COLUMN @extschema@.stock_ledger.bucket IS 'With audit_id: the stock_levels row (bucket) the change went to.';

CREATE OR REPLACE FUNCTION @extschema@.audit_history(tbl regclass, pk jsonb)
RETURNS SETOF @extschema@.audit_log
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    story @extschema@.audit_log[];
    r     @extschema@.audit_log;
    img   jsonb;
    led   boolean[];
    cols  text[];
    od    jsonb;
    nd    jsonb;
    ts    timestamptz;
    pid   bigint;
BEGIN
    IF $1 = '@extschema@.stock_levels'::regclass AND jsonb_typeof($2->'product_id') = 'number'
       AND $2->>'product_id' ~ '^[0-9]{1,18}$' THEN
        pid := ($2->>'product_id')::bigint;
    END IF;
    WITH t AS (
        SELECT n.nspname::text AS s, c.relname::text AS r
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = $1
    )
    SELECT array_agg(h ORDER BY h.id) INTO story FROM (
        SELECT a.* FROM @extschema@.audit_log a, t
         WHERE a.pk = $2 AND a.schema_name = t.s AND a.table_name = t.r
        UNION ALL
        SELECT a.* FROM @extschema@.audit_log a, t
         WHERE a.old_pk = $2 AND a.old_pk IS NOT NULL AND a.schema_name = t.s AND a.table_name = t.r
        UNION ALL
        SELECT a.* FROM @extschema@.audit_log a, t
         WHERE a.schema_name = t.s AND a.table_name = t.r AND a.pk IS NULL AND a.operation = 'TRUNCATE'
        UNION ALL
        -- stock_levels: changes recorded by their ledger rows (audit_id set)
        -- instead of audit rows; new_data holds the deltas
        -- until the walk below, changed_columns NULL marks them
        SELECT g.audit_id, g.created_at, g.txid, g.actor, g.actor_role, g.db_user, g.application_name,
               '@extschema@', 'stock_levels', 'UPDATE', $2, NULL, NULL,
               jsonb_build_object('on_hand', g.delta_on_hand, 'reserved', g.delta_reserved), NULL
          FROM @extschema@.stock_ledger g
         WHERE g.product_id = pid AND g.location = $2->>'location'
           AND $2 = jsonb_build_object('product_id', g.product_id, 'location', g.location, 'bucket', coalesce(g.bucket, 0))
           AND g.audit_id IS NOT NULL
    ) h;
    IF story IS NULL THEN
        RETURN;
    END IF;
    -- A change from the ledger: on_hand and reserved before and after it, from the row as it is now (or as its DELETE left it) with every later
    -- change undone, newest first; updated_at became the transaction's start.
    led := '{}';
    FOR i IN 1 .. cardinality(story) LOOP
        r := story[i];
        led := led || (r.operation = 'UPDATE' AND r.changed_columns IS NULL);
    END LOOP;
    IF true = ANY (led) THEN
        r := story[cardinality(story)];
        IF r.operation IN ('INSERT', 'UPDATE') AND r.pk = $2 THEN
            img := @extschema@.audit_row_image($1, $2);
        END IF;
        FOR i IN REVERSE cardinality(story) .. 1 LOOP
            r := story[i];
            IF led[i] THEN
                cols := '{}';
                od := '{}';
                nd := '{}';
                IF (r.new_data->>'on_hand')::int <> 0 THEN
                    cols := cols || 'on_hand'::text;
                    nd := nd || jsonb_build_object('on_hand', img->'on_hand');
                    od := od || jsonb_build_object('on_hand', (img->>'on_hand')::int - (r.new_data->>'on_hand')::int);
                END IF;
                IF (r.new_data->>'reserved')::int <> 0 THEN
                    cols := cols || 'reserved'::text;
                    nd := nd || jsonb_build_object('reserved', img->'reserved');
                    od := od || jsonb_build_object('reserved', (img->>'reserved')::int - (r.new_data->>'reserved')::int);
                END IF;
                r.changed_columns := cols;
                IF img IS NULL THEN
                    r.old_data := NULL;   -- the row's later story is unknown from here
                    r.new_data := NULL;
                ELSE
                    r.old_data := od;
                    r.new_data := nd;
                    img := img || od;
                END IF;
                story[i] := r;
            ELSIF r.operation = 'DELETE' THEN
                img := r.old_data;
            ELSIF r.operation = 'UPDATE' THEN
                img := img || r.old_data;
            ELSE
                img := NULL;
            END IF;
        END LOOP;
        -- updated_at, oldest first: the value before each change from the ledger
        ts := NULL;
        FOR i IN 1 .. cardinality(story) LOOP
            r := story[i];
            IF led[i] THEN
                IF ts IS DISTINCT FROM r.logged_at THEN
                    r.changed_columns := r.changed_columns || 'updated_at'::text;
                    r.new_data := r.new_data || jsonb_build_object('updated_at', r.logged_at);
                    IF ts IS NOT NULL THEN
                        r.old_data := r.old_data || jsonb_build_object('updated_at', ts);
                    END IF;
                    story[i] := r;
                END IF;
                ts := r.logged_at;
            ELSIF r.operation IN ('INSERT', 'UPDATE') AND r.new_data ? 'updated_at' THEN
                ts := (r.new_data->>'updated_at')::timestamptz;
            ELSIF r.operation NOT IN ('INSERT', 'UPDATE') THEN
                ts := NULL;
            END IF;
        END LOOP;
    END IF;
    -- An INSERT recorded by key only (tables audited with '@insert_key'): its
    -- new_data is the row as it was first written, i.e. the row as it is now
    -- (or as its DELETE left it) with every later UPDATE undone, newest first.
    IF EXISTS (SELECT 1 FROM unnest(story) s WHERE s.operation = 'INSERT' AND s.new_data IS NULL AND s.pk IS NOT NULL) THEN
        r := story[cardinality(story)];
        IF r.operation IN ('INSERT', 'UPDATE') AND r.pk = $2 THEN
            img := @extschema@.audit_row_image($1, $2);
        END IF;
        FOR i IN REVERSE cardinality(story) .. 1 LOOP
            r := story[i];
            IF r.operation = 'DELETE' THEN
                img := r.old_data;
            ELSIF r.operation = 'UPDATE' THEN
                img := img || r.old_data;
            ELSIF r.operation = 'INSERT' THEN
                IF r.new_data IS NULL AND r.pk IS NOT NULL THEN
                    r.new_data := img;
                    story[i] := r;
                END IF;
                img := NULL;
            ELSE
                img := NULL;    -- before a TRUNCATE: unknown from here
            END IF;
        END LOOP;
    END IF;
    RETURN QUERY SELECT * FROM unnest(story);
END
$$;
COMMENT ON FUNCTION @extschema@.audit_history(regclass, jsonb) IS 'A row''s story, oldest first: every audit_log row whose primary key (or key before a key change) equals pk, plus TRUNCATEs of the table. pk is the full key as a JSON object, e.g. {"id": 42}. An INSERT recorded by key only shows the row''s first version, read back from the table. For elfsofa.stock_levels, the changes recorded by their stock_ledger rows (audit_id set: an order''s reservations, and for products that are not hot its cancels, shipments, returns and expiries) come from there, with on_hand, reserved and updated_at before and after.';

CREATE OR REPLACE FUNCTION @extschema@.audit_summary(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (schema_name text, table_name text, operation text, actor text, actor_role text,
               changes bigint, first_at timestamptz, last_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT a.schema_name, a.table_name, a.operation, a.actor, a.actor_role,
           count(*), min(a.logged_at), max(a.logged_at)
      FROM (SELECT l.schema_name, l.table_name, l.operation, l.actor, l.actor_role, l.logged_at
              FROM @extschema@.audit_log l
             WHERE l.logged_at >= $1 AND l.logged_at < $2
            UNION ALL
            SELECT '@extschema@', 'stock_levels', 'UPDATE', g.actor, g.actor_role, g.created_at
              FROM @extschema@.stock_ledger g
             WHERE g.audit_id IS NOT NULL AND g.created_at >= $1 AND g.created_at < $2) a
     GROUP BY a.schema_name, a.table_name, a.operation, a.actor, a.actor_role
     ORDER BY a.schema_name, a.table_name, a.operation, a.actor, a.actor_role
$$;
COMMENT ON FUNCTION @extschema@.audit_summary(timestamptz, timestamptz) IS 'Compliance summary: number of audited changes per table, operation and actor in [from_ts, to_ts), the stock changes recorded by their stock_ledger rows (audit_id set) included.';

-- Orders, their lines and payments stay in their tables and every later change
-- to them is audited: their INSERTs are recorded by key only (audit_history
-- reads the first version back), instead of a second copy of every new row.
DO $do$
DECLARE
    t   text;
    def text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_lines', 'payments'] LOOP
        -- excluded columns are kept; a table whose auditing was turned off stays so
        SELECT pg_catalog.pg_get_triggerdef(g.oid) INTO def
          FROM pg_catalog.pg_trigger g
         WHERE g.tgrelid = format('@extschema@.%I', t)::regclass AND g.tgname = 'elfsofa_audit'
           AND g.tgparentid = 0;
        CONTINUE WHEN def IS NULL OR position('@insert_key' IN def) > 0;
        IF position('audit_trigger()' IN def) > 0 THEN
            def := replace(def, 'audit_trigger()', 'audit_trigger(''@insert_key'')');
        ELSE
            def := replace(def, 'audit_trigger(''', 'audit_trigger(''@insert_key'', ''');
        END IF;
        EXECUTE format('DROP TRIGGER elfsofa_audit ON @extschema@.%I', t);
        EXECUTE def;
    END LOOP;
END
$do$;

REVOKE ALL ON FUNCTION @extschema@.audit_row_image(regclass, jsonb) FROM PUBLIC;

-- api_guard keys anonymous callers on the trusted proxy's address only.
COMMENT ON FUNCTION @extschema@.api_guard() IS
  'PostgREST db-pre-request hook: limits each JWT sub to elfsofa.rate_limit_per_minute and each client IP without a sub (the address the trusted proxy put in elfsofa.rate_limit_client_header, default the last x-forwarded-for entry; callers without one share one bucket) to elfsofa.rate_limit_anon_per_minute; PT429 with HINT "Retry after N seconds" when exceeded; 22023 when content-length exceeds elfsofa.max_request_bytes. Roles with BYPASSRLS (service_role) are exempt.';

-- Auditing the auditing: table events in audit_log (ENABLE AUDIT, DISABLE
-- AUDIT, ATTACH / DETACH / DROP PARTITION), and audit triggers that fire in
-- session_replication_role replica too.
ALTER TABLE @extschema@.audit_log
    DROP CONSTRAINT audit_log_operation_check,
    ADD CONSTRAINT audit_log_operation_check
        CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                             'ENABLE AUDIT', 'DISABLE AUDIT', 'ATTACH PARTITION',
                             'DETACH PARTITION', 'DROP PARTITION'));
COMMENT ON COLUMN @extschema@.audit_log.new_data IS 'INSERT: the whole new row; UPDATE: new values of the changed columns only; TRUNCATE, ATTACH, DETACH or DROP of one partition: {"partition": "schema.name"}; ENABLE AUDIT by enable_audit: {"exclude_columns": [...], "via": parent (an inheritance child)}; ENABLE/DISABLE AUDIT by ALTER TABLE or DROP TRIGGER: {"trigger", "fires": always|origin|replica|never|dropped}. Excluded columns never appear.';
COMMENT ON COLUMN @extschema@.audit_log.operation IS 'INSERT, UPDATE, DELETE (one row each), TRUNCATE; and events of the table itself: ENABLE AUDIT / DISABLE AUDIT (enable_audit, disable_audit, or its audit trigger altered or dropped), ATTACH / DETACH / DROP PARTITION of an audited partitioned table.';
COMMENT ON FUNCTION @extschema@.enable_audit(regclass, text[]) IS 'Starts auditing a table and its inheritance children, also later ones (partitions through the parent) or replaces their settings: every INSERT, UPDATE, DELETE and TRUNCATE is written to audit_log, in session_replication_role replica too (the triggers fire ALWAYS); exclude_columns never appear there; writes an ENABLE AUDIT row per table. Needs a primary key (or a replica identity index) on each.';
COMMENT ON FUNCTION @extschema@.disable_audit(regclass) IS 'Stops auditing a table and its inheritance children, writing a DISABLE AUDIT row for each; returns false when none was audited. Existing audit rows stay.';
DO $always$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT tg.tgrelid::regclass FROM pg_catalog.pg_trigger tg
         WHERE tg.tgname = 'elfsofa_audit_truncate' AND NOT tg.tgisinternal
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER elfsofa_audit, ENABLE ALWAYS TRIGGER elfsofa_audit_truncate', t);
    END LOOP;
END
$always$;

-- Supabase-native (issue 18): the exposed schema elfsofa holds only SECURITY
-- INVOKER functions, security_invoker views and RLS-protected tables.  The
-- SECURITY DEFINER functions move (same OIDs, same C symbols) to the new
-- schema elfsofa_internal, which is never exposed, and elfsofa keeps an
-- inlinable SQL wrapper of the same signature, defaults and comment for
-- each.  Keep this section after every other change to those functions:
-- a later CREATE OR REPLACE of one of them must name elfsofa_internal.
CREATE SCHEMA elfsofa_internal;
COMMENT ON SCHEMA elfsofa_internal IS
  'elfsofa''s SECURITY DEFINER functions, called through their SECURITY INVOKER wrappers of the same name in schema elfsofa. Not for the Data API: never add it to the exposed schemas (pgrst.db_schemas).';

CREATE POLICY storefront ON @extschema@.products FOR SELECT TO PUBLIC USING (is_active);
COMMENT ON POLICY storefront ON @extschema@.products IS 'The storefront reads active products only.';
ALTER TABLE @extschema@.products ENABLE ROW LEVEL SECURITY;
CREATE POLICY storefront ON @extschema@.categories FOR SELECT TO PUBLIC USING (true);
COMMENT ON POLICY storefront ON @extschema@.categories IS 'The storefront reads every category.';
ALTER TABLE @extschema@.categories ENABLE ROW LEVEL SECURITY;

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

COMMENT ON VIEW @extschema@.api_grants IS
  'What anon and authenticated may use (service_role gets everything). Functions by name (every signature), tables by name; names not (yet) installed are skipped, and a non-catalog table is granted only while it has row-level security. run_as_owner: the function runs SECURITY DEFINER with a fixed search_path, so callers need no table privileges; it lives in schema elfsofa_internal and is called through the SECURITY INVOKER wrapper of the same name in elfsofa (both are granted). A view, not a table: the API surface changes with the extension version, and pg_dump has no rows to restore twice.';

-- Foreign keys without an index serving them (splinter's unindexed_foreign_keys
-- skips extension tables; test/scripts/71_supabase_splinter.sh checks them).
CREATE INDEX categories_parent_idx ON @extschema@.categories (parent_id);  -- serves the foreign key
CREATE INDEX cart_items_product_idx ON @extschema@.cart_items (product_id);  -- serves the foreign key

-- grant_api() again: grants the wrappers and their bodies in elfsofa_internal,
-- and no longer grants products/categories without row-level security.
CREATE OR REPLACE FUNCTION @extschema@.grant_api()
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
REVOKE ALL ON ALL ROUTINES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA elfsofa_internal FROM PUBLIC;
REVOKE ALL ON SCHEMA elfsofa_internal FROM PUBLIC;
SELECT @extschema@.grant_api();
