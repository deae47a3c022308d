#!/usr/bin/env bash
# test/scripts/90_upgrade.sh — ALTER EXTENSION elfsofa UPDATE from the 1.0
# users have (src/sql/versions/elfsofa--1.0.sql, frozen):
#   - a populated 1.0 shop (orders, status steps, payments, audit, events,
#     archived logs) is updated and keeps every row of every table (count and
#     md5 per table), then takes orders again;
#   - a fresh install and an updated one have the same objects, with the same
#     definitions (pg_describe_object of the members, their SQL definitions,
#     columns, constraints, indexes, triggers, policies and grants);
#   - the whole pg_regress suite passes on databases made by 1.0 + UPDATE;
#   - every C entry point any shipped script names is in the library.
source "$(dirname "$0")/../tap.sh"
W=$ES_TMP/upgrade
rm -rf "$W"; mkdir -p "$W"
OLD=es_upgrade_old
NEW=es_upgrade_new

for db in $OLD $NEW; do
    q -c "DROP DATABASE IF EXISTS $db" >/dev/null
    q -c "CREATE DATABASE $db" >/dev/null
done
q -d $OLD -c "SET client_min_messages = warning" -c "CREATE EXTENSION elfsofa VERSION '1.0'" >/dev/null
tap_is "$(q -d $OLD -c "SELECT extversion FROM pg_extension WHERE extname = 'elfsofa'")" "1.0" "version 1.0 installs"

# a shop's worth of rows under 1.0
q -d $OLD >/dev/null <<'SQL'
SET client_min_messages = warning;
SET elfsofa.actor = 'upgrade-test';
INSERT INTO elfsofa.products (sku, name, price, low_stock_threshold)
  SELECT 'UP-' || i, 'cover ' || i, 100 * i, 3 FROM generate_series(1, 5) i;
SELECT elfsofa.restock('UP-' || i, 50) FROM generate_series(1, 5) i;
SELECT elfsofa.restock('UP-1', 10, 'bangkok');
SELECT elfsofa.upsert_customer('up' || i || '@example.th', 'Customer ' || i) FROM generate_series(1, 3) i;
CREATE TABLE public.notes (id int PRIMARY KEY, body text);
SELECT elfsofa.enable_audit('public.notes');
INSERT INTO public.notes VALUES (1, 'a'), (2, 'b');
UPDATE public.notes SET body = 'c' WHERE id = 2;
DO $$
DECLARE c uuid; r jsonb;
BEGIN
  FOR i IN 1..30 LOOP
    SELECT id INTO c FROM elfsofa.customers ORDER BY email OFFSET i % 3 LIMIT 1;
    r := elfsofa.process_order(jsonb_build_object('customer_id', c,
           'items', jsonb_build_array(jsonb_build_object('sku', 'UP-' || (1 + i % 5), 'quantity', 1 + i % 2)),
           'idempotency_key', 'up-' || i),
         NULL, jsonb_build_object('method', 'promptpay'));
    IF i % 3 = 0 THEN PERFORM elfsofa.set_order_status((r->>'order_id')::bigint, 'confirmed'); END IF;
    IF i % 7 = 0 THEN PERFORM elfsofa.cancel_order((r->>'order_id')::bigint, 'changed mind'); END IF;
  END LOOP;
END $$;
SELECT elfsofa.log('info', 'before the upgrade', '{"k": 1}');
SELECT elfsofa.emit_event('test.upgrade', 'k1', '{"x": 1}');
-- a role of the user's own, granted a SECURITY DEFINER RPC under 1.0
DO $$ BEGIN IF to_regrole('es_upgrade_clerk') IS NULL THEN CREATE ROLE es_upgrade_clerk NOLOGIN; END IF; END $$;
GRANT USAGE ON SCHEMA elfsofa TO es_upgrade_clerk;
GRANT EXECUTE ON FUNCTION elfsofa.available(text, text) TO es_upgrade_clerk;
SQL
tap_ok $? "the 1.0 shop took orders, status steps, audit rows, logs and events"

# count and md5 of every table of the extension's schemas (partitions included)
# (of the columns 1.0 has: a column 1.1 adds, with its default, is no lost row)
cat >"$W/sums.sql" <<'SQL'
CREATE TABLE IF NOT EXISTS public.cols_1_0 AS
  SELECT a.attrelid::regclass::text AS tbl, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS cols
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace ns ON ns.oid = c.relnamespace
   WHERE ns.nspname IN ('elfsofa', 'elfsofa_archive', 'public') AND c.relkind IN ('r', 'p')
     AND a.attnum > 0 AND NOT a.attisdropped
   GROUP BY 1;
DO $$
DECLARE t record; n bigint; h text;
BEGIN
  CREATE TEMP TABLE sums (tbl text, n bigint, md5 text);
  FOR t IN SELECT c.oid::regclass AS r, format('%I.%I', ns.nspname, c.relname) AS name, k.cols
             FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
             JOIN public.cols_1_0 k ON k.tbl = c.oid::regclass::text
            WHERE ns.nspname IN ('elfsofa', 'elfsofa_archive', 'public') AND c.relkind IN ('r', 'p')
  LOOP
    EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) FROM (SELECT %s FROM %s) x', t.cols, t.r)
      INTO n, h;
    INSERT INTO sums VALUES (t.name, n, h);
  END LOOP;
END $$;
SELECT string_agg(tbl || ' ' || n || ' ' || md5, E'\n' ORDER BY tbl) FROM sums;
SQL
q -d $OLD -f "$W/sums.sql" >"$W/before.txt"
orders_before=$(q -d $OLD -c "SELECT count(*) FROM elfsofa.orders")
q -d $OLD -c "SET client_min_messages = warning" -c "ALTER EXTENSION elfsofa UPDATE" >"$W/update.log" 2>&1
tap_ok $? "ALTER EXTENSION elfsofa UPDATE ran: $(tr '\n' ' ' <"$W/update.log")"
tap_is "$(q -d $OLD -c "SELECT extversion FROM pg_extension WHERE extname = 'elfsofa'")" "1.1" "the database is at 1.1"
q -d $OLD -f "$W/sums.sql" >"$W/after.txt"
tap_ok $([ -s "$W/before.txt" ] && cmp -s "$W/before.txt" "$W/after.txt"; echo $?) \
    "every row of every table is still there ($(wc -l <"$W/after.txt") tables, $orders_before orders; count and md5 each)"
diff "$W/before.txt" "$W/after.txt" | head -10 | sed 's/^/#   /'

# 1.1 moved the SECURITY DEFINER functions to elfsofa_internal behind wrappers:
# a role granted one under 1.0 still calls it by its old name
tap_is "$(q -d $OLD -c "SET ROLE es_upgrade_clerk" -c "SELECT elfsofa.available('UP-1')" 2>&1)" \
    "$(q -d $OLD -c "SELECT elfsofa_internal.available('UP-1')")" \
    "a role granted elfsofa.available() under 1.0 still calls it after the update"
q -d $OLD -c "DROP OWNED BY es_upgrade_clerk" -c "DROP ROLE es_upgrade_clerk" >/dev/null

# the updated shop works
r=$(q -d $OLD -c "SELECT elfsofa.process_order(jsonb_build_object('customer_id', (SELECT id FROM elfsofa.customers ORDER BY email LIMIT 1),
                   'items', '[{\"sku\": \"UP-2\", \"quantity\": 1}]'::jsonb))->>'status'")
tap_is "$r" "pending" "the updated shop takes an order"
tap_is "$(q -d $OLD -c "SELECT elfsofa.process_order(jsonb_build_object('customer_id', customer_id, 'items',
              '[{\"sku\": \"UP-$((1 + 1 % 5))\", \"quantity\": 2}]'::jsonb, 'idempotency_key', 'up-1'), NULL,
              '{\"method\": \"promptpay\"}')->>'replayed' FROM elfsofa.idempotency_keys WHERE key = 'up-1'")" "true" \
    "an idempotency key taken under 1.0 replays after the update"
tap_is "$(q -d $OLD -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'notes' AND pk IS NOT NULL")" "3" "the audit trail of 1.0 is kept"
q -d $OLD -c "UPDATE public.notes SET body = 'd' WHERE id = 1" >/dev/null
tap_is "$(q -d $OLD -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'notes' AND pk IS NOT NULL")" "4" "and auditing goes on"

# the same objects as a fresh install
q -d $NEW -c "SET client_min_messages = warning" -c "CREATE EXTENSION elfsofa" >/dev/null
cat >"$W/objects.sql" <<'SQL'
WITH m AS (
  SELECT d.classid, d.objid, d.objsubid FROM pg_depend d
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'elfsofa'))
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS line FROM m
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '-')
    FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid WHERE p.prokind <> 'a'
  UNION ALL
  SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
    FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  UNION ALL
  SELECT 'acl ' || c.oid::regclass || ' ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '-') || ' rls ' || c.relrowsecurity
    FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  UNION ALL
  SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid))
    FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = k.conrelid
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = i.indrelid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'policy ' || pol.polrelid::regclass || ' ' || pol.polname || ' ' || pol.polcmd::text || ' '
         || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '-') || ' ' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '-')
    FROM pg_policy pol JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = pol.polrelid
) l;
SQL
q -d $NEW -f "$W/objects.sql" >"$W/objects_new.txt"
q -d $OLD -f "$W/objects.sql" >"$W/objects_old.txt"
tap_ok $([ -s "$W/objects_new.txt" ] && cmp -s "$W/objects_new.txt" "$W/objects_old.txt"; echo $?) \
    "a fresh 1.1 and an updated 1.0 have the same objects and definitions ($(wc -l <"$W/objects_new.txt") lines)"
diff "$W/objects_new.txt" "$W/objects_old.txt" | head -20 | sed 's/^/#   /'

# every C entry point a shipped script names is in the library, with its info function
lib=$("$ES_PG_CONFIG" --pkglibdir)/elfsofa.so
nm -D --defined-only "$lib" | awk '{print $3}' | sort -u >"$W/lib_symbols"
missing=""
for f in "$ES_ROOT"/src/sql/versions/*.sql "$ES_ROOT"/elfsofa--*.sql; do
    for sym in $(grep -oE "'MODULE_PATHNAME', '[A-Za-z_0-9]+'" "$f" | awk -F"'" '{print $4}' | sort -u); do
        grep -qx "$sym" "$W/lib_symbols" && grep -qx "pg_finfo_$sym" "$W/lib_symbols" || missing="$missing $(basename "$f"):$sym"
    done
done
tap_is "$missing" "" "every C function named by a shipped install or upgrade script is in elfsofa.so"

# the whole regression suite on databases made by 1.0 + ALTER EXTENSION UPDATE
log_before=$(grep -c 'statement: ALTER EXTENSION elfsofa UPDATE' "$ES_TMP/log/server.log")
PGOPTIONS="-c elfsofa_test.install=upgrade -c log_statement=ddl -c elfsofa.publisher=off" timeout 600 make -s -C "$ES_ROOT" installcheck PG_CONFIG="$ES_PG_CONFIG" \
    REGRESS_OPTS="--inputdir=. --outputdir=$W/regress --dbname=contrib_regression" >"$W/regress.log" 2>&1
rc=$?
grep -E 'FAILED|failed' "$W/regress.log" | head -10 | sed 's/^/#   /'
[ -f "$W/regress/regression.diffs" ] && head -40 "$W/regress/regression.diffs" | sed 's/^/#   /'
tap_ok $rc "pg_regress passes on 1.0 + UPDATE installs ($(grep -cE '(\.\.\. ok|^ok [0-9]+)' "$W/regress.log") tests)"
nfiles=$(ls "$ES_ROOT"/sql/*.sql | wc -l)
tap_is "$(( $(grep -c 'statement: ALTER EXTENSION elfsofa UPDATE' "$ES_TMP/log/server.log") - log_before ))" "$nfiles" \
    "each of the $nfiles regression files set up elfsofa through the update (server log)"

q -c "DROP DATABASE $OLD" -c "DROP DATABASE $NEW" >/dev/null
tap_done
