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

SELECT @extschema@.grant_api();

-- The partition sets' settings are audited (retention decides what history is
-- dropped); maintenance's bookkeeping columns are not.
SELECT @extschema@.enable_audit('@extschema@.partition_sets', ARRAY['last_run', 'last_error']);
