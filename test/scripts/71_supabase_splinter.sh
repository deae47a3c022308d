#!/usr/bin/env bash
# 71_supabase_splinter.sh — Supabase's own linter (splinter, the dashboard's
# "Security Advisor" / "Performance Advisor") on a database set up the way
# Supabase sets one up, with the schemas the README tells users to expose
# (pgrst.db_schemas = 'public,elfsofa'): no finding at ERROR or WARN.
#
# The database: roles anon, authenticated, service_role, authenticator
# (test/supabase_roles.sql); schema auth with Supabase's uid(), jwt(), role()
# and a users table; the Data API in explicit-grants mode — no default
# privileges for the API roles, so whatever they can reach comes from
# elfsofa.grant_api().  Then a shop with data and the partitions maintenance
# makes, since lints look at every table.
#
# One TAP line per lint; a failing line lists that lint's ERROR/WARN findings.
# INFO findings are printed as comments.  Fixed: the foreign keys that had no
# index serving them (categories.parent_id, cart_items.product_id; splinter
# skips extension tables, so this script checks them itself, below).  Those
# that stay, and why:
# - unused_index: a fresh database has used no index; the statistics say
#   nothing about the shop's workload.
# - unindexed_foreign_keys on order_lines_pYYYY_MM (order_id, created_at):
#   the primary key (order_id, line_no, created_at) serves it — its leading
#   column is order_id and created_at is in it, so the foreign key's checks
#   and "the lines of an order" are index scans on both columns; splinter
#   wants the columns as the index's prefix, in order.  A second index would
#   cost every order line insert.
# - no_primary_key on audit_log_pYYYY_MM: the audit log is append-only (no
#   UPDATE or DELETE to identify rows for, also not in logical replication);
#   a primary key would have to include the partition key and would add an
#   index write to every audited change.  Rows are found by their hash
#   indexes on pk / old_pk.
# Only partitions show up: splinter skips extension members, and partitions
# are never members (README, "Partitions and archiving").
# The pg_graphql lints (0026/0027) run only when pg_graphql is installed, which
# it is not here; on the supabase/postgres image they list the tables anon and
# authenticated read on purpose (the catalog, a customer's own rows under RLS).
#
# splinter.sql is Supabase's file, kept outside the project
# ($ES_ROOT/../shared/tools/splinter); without it this script skips.
source "$(dirname "$0")/../tap.sh"
SPLINTER=$ES_ROOT/../shared/tools/splinter/splinter.sql
if [ ! -f "$SPLINTER" ]; then
    echo "ok 1 - # skip splinter not found at $SPLINTER"
    echo "1..1"
    exit 0
fi
DB=elfsofa_splinter
W=$ES_TMP/splinter
rm -rf "$W"; mkdir -p "$W"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null

q -d $DB -f "$ES_ROOT/test/supabase_roles.sql" >/dev/null
tap_ok $? "Supabase's API roles exist"
q -d $DB >/dev/null <<'SQL'
-- Supabase's auth schema, as far as the linter and the API look at it.
CREATE SCHEMA auth;
CREATE TABLE auth.users (
    id                  uuid PRIMARY KEY,
    email               text,
    raw_user_meta_data  jsonb,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
SQL
tap_ok $? "schema auth with users, uid(), role(), jwt()"
tap_is "$(q -d $DB -c "SELECT count(*) FROM pg_default_acl d
                        WHERE EXISTS (SELECT 1 FROM aclexplode(d.defaclacl) a
                                       WHERE a.grantee IN (SELECT oid FROM pg_roles
                                                            WHERE rolname IN ('anon', 'authenticated', 'service_role')))")" \
    0 "explicit-grants mode: no default privileges for the API roles"

q -d $DB -c "SET client_min_messages = warning" -c "CREATE EXTENSION elfsofa" >/dev/null
tap_ok $? "CREATE EXTENSION elfsofa"
q -d $DB -c "SELECT elfsofa.grant_api()" >/dev/null
tap_ok $? "grant_api()"
q -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO elfsofa.categories (slug, name) VALUES ('covers', 'Covers');
INSERT INTO elfsofa.products (sku, name, price) VALUES ('ELF-L-GRY', 'L-shape cover, grey', 1790.00);
SELECT elfsofa.restock('ELF-L-GRY', 20);
SELECT elfsofa.upsert_customer('somchai@example.co.th', 'Somchai', NULL, 'c0000000-0000-4000-8000-000000000071');
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"authenticated","sub":"c0000000-0000-4000-8000-000000000071"}', true);
SET LOCAL ROLE authenticated;
SELECT elfsofa.process_order('{"items": [{"sku": "ELF-L-GRY", "quantity": 2}], "idempotency_key": "splinter-1"}');
COMMIT;
SELECT elfsofa.run_maintenance();
SQL
tap_ok $? "a shop with a product, stock, a customer's order placed through the API, maintenance run"

# splinter starts with SET LOCAL search_path: run it in a transaction, and keep
# its rows in a temporary table to print them.
{
    echo "SET pgrst.db_schemas = 'public,elfsofa';"
    echo "BEGIN;"
    echo "SET LOCAL search_path = '';"
    echo "CREATE TEMP TABLE lint ON COMMIT PRESERVE ROWS AS"
    sed '1{/^set local search_path/d}' "$SPLINTER"
    echo ";"
    echo "COMMIT;"
    echo "SELECT name, level, detail FROM pg_temp.lint ORDER BY level, name, detail;"
} >"$W/run.sql"
q -d $DB -F $'\x1f' -f "$W/run.sql" >"$W/findings.txt" 2>"$W/splinter.err"
tap_ok $? "splinter ran"
sed 's/^/# /' "$W/splinter.err" | head -20

# Every lint the file defines gets a line, whether it found something or not.
for lint in $(grep -oE "^ *'[a-z0-9_]+' as name" "$SPLINTER" | grep -oE "[a-z0-9_]+" | grep -v '^as$' | grep -v '^name$' | sort -u); do
    bad=$(awk -F $'\x1f' -v l="$lint" '$1 == l && ($2 == "ERROR" || $2 == "WARN")' "$W/findings.txt")
    if [ -z "$bad" ]; then
        tap_ok 0 "splinter $lint: no ERROR or WARN"
    else
        tap_ok 1 "splinter $lint: $(echo "$bad" | wc -l) finding(s) at ERROR/WARN"
        echo "$bad" | tr $'\x1f' ' ' | sed 's/^/#   /'
    fi
done
# splinter skips extension members, so the extension's own foreign keys get
# the same check here: an index whose first column is the key's first column
# (order ids and customer ids are selective on their own: payments(order_id)
# serves (order_id, order_created_at)).  partition_sets.retire_with stays:
# one row per partitioned table, a handful in all.
tap_is "$(q -d $DB -c "SELECT string_agg(DISTINCT ct.conrelid::regclass || '(' || ct.conkey::text || ')', ', ')
                         FROM pg_constraint ct JOIN pg_class c ON c.oid = ct.conrelid
                        WHERE ct.contype = 'f' AND c.relnamespace = 'elfsofa'::regnamespace AND NOT c.relispartition
                          AND ct.conrelid <> 'elfsofa.partition_sets'::regclass
                          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = ct.conrelid
                                            AND i.indkey[0] = ct.conkey[1])")" \
    "" "every foreign key of elfsofa's tables has an index that serves it"
awk -F $'\x1f' '$2 == "INFO"' "$W/findings.txt" | tr $'\x1f' ' ' | sed 's/^/# INFO: /'
echo "# splinter: $(grep -c $'\x1fERROR\x1f' "$W/findings.txt") ERROR, $(grep -c $'\x1fWARN\x1f' "$W/findings.txt") WARN, $(grep -c $'\x1fINFO\x1f' "$W/findings.txt") INFO"

tap_done
