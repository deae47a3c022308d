-- elfsofa install script, part 40: the audit trail (src/audit/).
--
-- A generic C trigger writes one row per changed row into elfsofa.audit_log,
-- which is partitioned by month and append-only.  enable_audit/disable_audit
-- attach and detach it; audit_history/audit_summary read it.

CREATE SEQUENCE @extschema@.audit_log_id_seq AS bigint;
COMMENT ON SEQUENCE @extschema@.audit_log_id_seq IS 'Ids of audit_log rows; no CACHE, so ids follow the order in which changes were written.';

CREATE TABLE @extschema@.audit_log (
    id               bigint NOT NULL DEFAULT nextval('@extschema@.audit_log_id_seq'),
    logged_at        timestamptz NOT NULL DEFAULT now(),
    txid             bigint NOT NULL,
    actor            text NOT NULL,
    actor_role       text,
    db_user          text NOT NULL,
    application_name text,
    schema_name      text NOT NULL,
    table_name       text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                                    'ENABLE AUDIT', 'DISABLE AUDIT', 'ATTACH PARTITION',
                                                    'DETACH PARTITION', 'DROP PARTITION')),
    pk               jsonb,
    old_pk           jsonb,
    old_data         jsonb,
    new_data         jsonb,
    changed_columns  text[]
) PARTITION BY RANGE (logged_at);
ALTER SEQUENCE @extschema@.audit_log_id_seq OWNED BY @extschema@.audit_log.id;
-- Row lookups (audit_history) use hash indexes on the key: keys arrive in
-- random order, and measured on 200k-row inserts a hash index costs about half
-- of a btree on jsonb_hash_extended(pk) and a third of a btree on the jsonb
-- itself.  Rows of different tables that share a key value share a bucket;
-- audit_history filters on the table as well.  The trigger writes the hash
-- entries of a statement's audit rows together, sorted by bucket, before the
-- next query or utility command runs and before commit (src/audit/audit_write.c), so
-- every query, in the writing transaction too, finds them.
CREATE INDEX audit_log_pk_idx ON @extschema@.audit_log USING hash (pk);
CREATE INDEX audit_log_old_pk_idx ON @extschema@.audit_log USING hash (old_pk) WHERE old_pk IS NOT NULL;
CREATE INDEX audit_log_truncate_idx ON @extschema@.audit_log (schema_name, table_name) WHERE pk IS NULL;
COMMENT ON TABLE @extschema@.audit_log IS 'Append-only audit trail written by the C trigger elfsofa.audit_trigger, monthly partitions audit_log_pYYYY_MM; old data leaves only by partition retention/archiving.';
COMMENT ON COLUMN @extschema@.audit_log.logged_at IS 'Start time of the writing transaction (now()); also the partition key.';
COMMENT ON COLUMN @extschema@.audit_log.txid IS 'Top-level transaction id (as txid_current()); groups the changes of one transaction.';
COMMENT ON COLUMN @extschema@.audit_log.actor IS 'Who acted: JWT sub from request.jwt.claims, else setting elfsofa.actor, else current_user.';
COMMENT ON COLUMN @extschema@.audit_log.actor_role IS 'JWT role claim (anon, authenticated, service_role) when request.jwt.claims was set.';
COMMENT ON COLUMN @extschema@.audit_log.db_user IS 'current_user at the time of the change.';
COMMENT ON COLUMN @extschema@.audit_log.schema_name IS 'Schema of the audited table (for a partition: of the partitioned table auditing was enabled on).';
COMMENT ON COLUMN @extschema@.audit_log.pk IS 'Primary key of the row as a JSON object: the new key for INSERT/UPDATE, the old one for DELETE; NULL for TRUNCATE.';
COMMENT ON COLUMN @extschema@.audit_log.old_pk IS 'For an UPDATE that changed the primary key: the key before the change; otherwise NULL.';
COMMENT ON COLUMN @extschema@.audit_log.old_data IS 'DELETE: the whole old row; UPDATE: old values of the changed columns only. Excluded columns never appear.';
COMMENT ON COLUMN @extschema@.audit_log.new_data IS 'INSERT: the whole new row; UPDATE: new values of the changed columns only; TRUNCATE, ATTACH, DETACH or DROP of one partition: {"partition": "schema.name"}; ENABLE AUDIT by enable_audit: {"exclude_columns": [...], "via": parent (an inheritance child)}; ENABLE/DISABLE AUDIT by ALTER TABLE or DROP TRIGGER: {"trigger", "fires": always|origin|replica|never|dropped}. Excluded columns never appear.';
COMMENT ON COLUMN @extschema@.audit_log.operation IS 'INSERT, UPDATE, DELETE (one row each), TRUNCATE; and events of the table itself: ENABLE AUDIT / DISABLE AUDIT (enable_audit, disable_audit, or its audit trigger altered or dropped), ATTACH / DETACH / DROP PARTITION of an audited partitioned table.';
COMMENT ON COLUMN @extschema@.audit_log.changed_columns IS 'UPDATE: names of the changed columns, in column order.';

CREATE FUNCTION @extschema@.audit_trigger() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'es_audit_trigger';
COMMENT ON FUNCTION @extschema@.audit_trigger() IS 'Generic audit trigger (AFTER ROW insert/update/delete, AFTER STATEMENT truncate); its arguments are the excluded columns as "attnum:name" (attnum survives a rename), and the option @insert_key (INSERTs recorded by key only). Attach with enable_audit.';

CREATE FUNCTION @extschema@.audit_log_guard() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'es_audit_log_guard';
COMMENT ON FUNCTION @extschema@.audit_log_guard() IS 'Refuses UPDATE, DELETE and TRUNCATE of audit_log (SQLSTATE 42501). TRUNCATE of a single partition is refused by elfsofa''s utility hook.';

CREATE TRIGGER audit_log_append_only_stmt
    BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_log_guard();
-- Row triggers are cloned onto every partition, present and future, so
-- statements aimed at a partition directly are refused as well.
CREATE TRIGGER audit_log_append_only_row
    BEFORE UPDATE OR DELETE ON @extschema@.audit_log
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_log_guard();

CREATE FUNCTION @extschema@.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}')
RETURNS void LANGUAGE C AS 'MODULE_PATHNAME', 'es_enable_audit';
COMMENT ON FUNCTION @extschema@.enable_audit(regclass, text[]) IS 'Starts auditing a table and its inheritance children, also later ones (partitions through the parent) or replaces their settings: every INSERT, UPDATE, DELETE and TRUNCATE is written to audit_log, in session_replication_role replica too (the triggers fire ALWAYS); exclude_columns never appear there; writes an ENABLE AUDIT row per table. Needs a primary key (or a replica identity index) on each.';

CREATE FUNCTION @extschema@.disable_audit(tbl regclass)
RETURNS boolean LANGUAGE C AS 'MODULE_PATHNAME', 'es_disable_audit';
COMMENT ON FUNCTION @extschema@.disable_audit(regclass) IS 'Stops auditing a table and its inheritance children, writing a DISABLE AUDIT row for each; returns false when none was audited. Existing audit rows stay.';

CREATE FUNCTION @extschema@.audit_row_image(tbl regclass, pk jsonb)
RETURNS jsonb LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'es_audit_row_image';
COMMENT ON FUNCTION @extschema@.audit_row_image(regclass, jsonb) IS 'The row of audited table tbl whose primary key is pk, as its audit rows show it (excluded columns left out), or NULL when there is none; read with the caller''s rights. audit_history starts a story whose INSERT was recorded by key only with it.';

CREATE FUNCTION @extschema@.audit_history(tbl regclass, pk jsonb)
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

CREATE FUNCTION @extschema@.audit_summary(from_ts timestamptz, to_ts timestamptz)
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

-- Partitions: src/sql/90_bootstrap_partitions.sql registers audit_log with
-- the partition manager, which creates the current and next months (not as
-- extension members, so retention can drop them) and keeps them ahead.

-- Audit the shop's business tables from the start.
SELECT @extschema@.enable_audit(t)
  FROM unnest(ARRAY['@extschema@.products', '@extschema@.stock_levels', '@extschema@.customers',
                    '@extschema@.orders', '@extschema@.order_lines', '@extschema@.payments',
                    '@extschema@.shipments']::regclass[]) AS t;
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

