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

CREATE OR REPLACE FUNCTION @extschema@.audit_history(tbl regclass, pk jsonb)
RETURNS SETOF @extschema@.audit_log
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    story @extschema@.audit_log[];
    r     @extschema@.audit_log;
    img   jsonb;
BEGIN
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
    ) h;
    IF story IS NULL THEN
        RETURN;
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
COMMENT ON FUNCTION @extschema@.audit_history(regclass, jsonb) IS 'A row''s story, oldest first: every audit_log row whose primary key (or key before a key change) equals pk, plus TRUNCATEs of the table. pk is the full key as a JSON object, e.g. {"id": 42}. An INSERT recorded by key only shows the row''s first version, read back from the table.';

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
SELECT @extschema@.grant_api();
