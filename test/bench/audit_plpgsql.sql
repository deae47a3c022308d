-- test/bench/audit_plpgsql.sql — the comparison point for bench_audit.sh: a
-- PL/pgSQL audit trigger in the style of supa_audit (whole rows through
-- to_jsonb(OLD)/to_jsonb(NEW), key columns looked up from the catalog on each
-- row, one INSERT per row).  Written for the benchmark only.
CREATE SCHEMA IF NOT EXISTS bench_plaudit;

CREATE TABLE bench_plaudit.record_version (
    id            bigserial PRIMARY KEY,
    record_id     jsonb,
    old_record_id jsonb,
    op            text NOT NULL,
    ts            timestamptz NOT NULL DEFAULT now(),
    table_oid     oid NOT NULL,
    table_schema  name NOT NULL,
    table_name    name NOT NULL,
    actor         text,
    record        jsonb,
    old_record    jsonb
);
CREATE INDEX record_version_record_id ON bench_plaudit.record_version (table_oid, record_id);

-- Key columns of a table, read from pg_index every time (as supa_audit does).
CREATE FUNCTION bench_plaudit.primary_key_columns(entity oid) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(pa.attname::text ORDER BY pa.attnum), '{}')
      FROM pg_index pi
      JOIN pg_attribute pa ON pa.attrelid = pi.indrelid AND pa.attnum = ANY (pi.indkey)
     WHERE pi.indrelid = $1 AND pi.indisprimary
$$;

CREATE FUNCTION bench_plaudit.record_key(pkey_cols text[], rec jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN rec IS NULL OR cardinality(pkey_cols) = 0 THEN NULL
                ELSE (SELECT jsonb_object_agg(k, rec -> k) FROM unnest(pkey_cols) AS k) END
$$;

CREATE FUNCTION bench_plaudit.row_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    pkey_cols   text[] := bench_plaudit.primary_key_columns(TG_RELID);
    new_rec     jsonb  := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    old_rec     jsonb  := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
BEGIN
    INSERT INTO bench_plaudit.record_version
           (record_id, old_record_id, op, table_oid, table_schema, table_name, actor, record, old_record)
    VALUES (bench_plaudit.record_key(pkey_cols, new_rec), bench_plaudit.record_key(pkey_cols, old_rec),
            TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME,
            coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
                     nullif(current_setting('elfsofa.actor', true), ''), current_user),
            new_rec, old_rec);
    RETURN NULL;
END
$$;
