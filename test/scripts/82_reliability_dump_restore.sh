#!/usr/bin/env bash
# 82_reliability_dump_restore.sh — pg_dump (custom format) of a shop with data,
# pg_restore into a new database: every table of elfsofa comes back with the same
# rows (count + md5 per table), and the restored shop keeps taking orders.
#
# Both plain restore paths, with no options (README "Backup and restore"):
#   pg_dump -Fc -d SHOP -f shop.dump; pg_restore -d NEWDB shop.dump
#   pg_dump -d SHOP | psql -d NEWDB2
# report no error, and bring back every row.  The restore's CREATE EXTENSION
# puts its session in replica mode (foreign keys, audit and event triggers do
# not fire for rows that are already consistent) and skips the dump's indexes
# of partitions that ATTACH already made (src/partitions/part_restore.c).
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"
t0=$(rel_now)
W=$ES_TMP/rel-dump
rm -rf "$W"; mkdir -p "$W"
SRC=rel_dump_src
DST=rel_dump_dst

rel_shop $SRC
tap_ok $? "shop loaded"
rel_order_script "$W/order.sql"
pgbench -n -c 4 -j 2 -t 100 -f "$W/order.sql" $SRC >"$W/pgbench.log" 2>&1
tap_ok $? "400 orders placed"
q -d $SRC -c "SELECT rel.churn_one() FROM generate_series(1, 300)" >/dev/null
tap_ok $? "orders moved through their lifecycle"
q -d $SRC <<'SQL' >/dev/null
SELECT elfsofa.restock(rel.sku(i), 7, 'chiangmai', 'second warehouse') FROM generate_series(1, 20) i;
INSERT INTO elfsofa.categories (slug, name) VALUES ('covers', 'Covers');
INSERT INTO elfsofa.categories (slug, name, parent_id) VALUES ('l-shape', 'L-shape covers', 1);
-- Partitions made after CREATE EXTENSION are not extension members; their rows must come back too.
DO $$
DECLARE d date := current_date + 200;
BEGIN
    EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.events FOR VALUES FROM (%L) TO (%L)',
                   'events_p' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
    INSERT INTO elfsofa.events (topic, key, data, created_at) VALUES ('rel.future', 'f1', '{"x": 1}', d + time '10:00');
    EXECUTE format('CREATE TABLE elfsofa.%I PARTITION OF elfsofa.system_logs FOR VALUES FROM (%L) TO (%L)',
                   'system_logs_p' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
    INSERT INTO elfsofa.system_logs (level, message, created_at) VALUES ('info', 'from the future', d + time '10:00');
END $$;
INSERT INTO elfsofa.system_logs (level, message) VALUES ('warn', 'dump me');
SQL
tap_ok $? "more data: second location, categories, a partition created after CREATE EXTENSION"
if [ -n "$(q -d $SRC -c "SELECT to_regprocedure('elfsofa.run_maintenance(regclass)')")" ]; then
    q -d $SRC -c "SELECT elfsofa.run_maintenance()" >/dev/null
    tap_ok $? "run_maintenance made its partitions"
fi
psql -X -A -t -q -d $SRC -f "$REL_DIR/fingerprint.sql" >"$W/src.txt"
tap_ok $? "fingerprint of the source shop"

pg_dump -Fc -d $SRC -f "$W/shop.dump" 2>"$W/pg_dump.err"
tap_ok $? "pg_dump -Fc"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DST" -c "CREATE DATABASE $DST" >/dev/null
pg_restore -d $DST "$W/shop.dump" 2>"$W/pg_restore.err"
tap_ok $? "pg_restore -d (no options) exits 0"
tap_is "$(grep -c 'error' "$W/pg_restore.err")" 0 "pg_restore reports no error"
sed 's/^/# /' "$W/pg_restore.err" | head -20
psql -X -A -t -q -d $DST -f "$REL_DIR/fingerprint.sql" >"$W/dst.txt"

# Every table: same number of rows and same rows (md5 over the sorted rows).
tables=$(wc -l <"$W/src.txt")
tap_ok $([ "$tables" -ge 13 ]; echo $?) "fingerprinted $tables elfsofa tables"
diff "$W/src.txt" "$W/dst.txt" >"$W/diff.txt"
tap_ok $? "every elfsofa table has the same rows after the restore"
sed 's/^/# /' "$W/diff.txt" | head -20
# The shop's key tables, whatever the fingerprint's selection: present, same rows.
for t in elfsofa.products elfsofa.customers elfsofa.orders elfsofa.order_lines elfsofa.stock_levels elfsofa.stock_ledger \
         elfsofa.payments elfsofa.idempotency_keys elfsofa.events elfsofa.system_logs elfsofa.audit_log; do
    [ -z "$(q -d $SRC -c "SELECT to_regclass('$t')")" ] && continue
    fq="SELECT count(*) || '|' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM $t t"
    a=$(q -d $SRC -c "$fq"); b=$(q -d $DST -c "$fq" 2>&1)
    tap_is "$b" "$a" "$t: ${a%%|*} rows restored, identical"
done
tap_ok $([ "$(grep '^elfsofa.orders|' "$W/src.txt" | cut -d'|' -f2)" -ge 300 ]; echo $?) "the dump held at least 300 orders"
tap_is "$(q -d $DST -c "SELECT count(*) FROM elfsofa.events WHERE topic = 'rel.future'")" 1 "row in a partition made after CREATE EXTENSION restored"
# Every partition is attached and has its primary key, as in the source.
keys="SELECT string_agg(c.relname || ':' || c.relispartition || ':' || (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
                          || ':' || (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid), ',' ORDER BY c.relname)
        FROM pg_class c WHERE c.relnamespace = 'elfsofa'::regnamespace AND c.relkind IN ('r', 'p')"
tap_is "$(q -d $DST -c "$keys")" "$(q -d $SRC -c "$keys")" "every table and partition restored, attached, with its primary key and indexes"

# The restored shop is consistent and works: orders, restocks, fresh ids.
rel_check_invariants $DST "restored"
before=$(q -d $DST -c "SELECT max(id) FROM elfsofa.orders")
pgbench -n -c 2 -j 2 -t 25 -f "$W/order.sql" $DST >"$W/pgbench2.log" 2>&1
tap_ok $? "the restored shop takes 50 more orders"
tap_is "$(q -d $DST -c "SELECT count(*) FROM elfsofa.orders WHERE id > $before")" 50 "new orders got ids after the restored ones"
tap_is "$(q -d $DST -c "SELECT elfsofa.restock('REL-001', 5, 'chiangmai')")" 12 "the restored shop restocks"
rel_check_invariants $DST "restored, after new orders"

# The plain path: pg_dump | psql, no options either
DST2=rel_dump_plain
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DST2" -c "CREATE DATABASE $DST2" >/dev/null
pg_dump -d $SRC 2>"$W/pg_dump_plain.err" | psql -X -q -d $DST2 >"$W/psql_plain.out" 2>"$W/psql_plain.err"
tap_ok $? "pg_dump | psql ran"
tap_is "$(grep -c 'ERROR' "$W/psql_plain.err")" 0 "the plain restore reports no error"
grep ERROR "$W/psql_plain.err" | head -10 | sed 's/^/# /'
psql -X -A -t -q -d $DST2 -f "$REL_DIR/fingerprint.sql" >"$W/dst2.txt"
diff "$W/src.txt" "$W/dst2.txt" >"$W/diff2.txt"
tap_ok $? "pg_dump | psql: every elfsofa table has the same rows"
sed 's/^/# /' "$W/diff2.txt" | head -20
rel_check_invariants $DST2 "plain restore"
pgbench -n -c 2 -j 2 -t 10 -f "$W/order.sql" $DST2 >"$W/pgbench3.log" 2>&1
tap_ok $? "the plain-restored shop takes orders"

psql -X -q -d postgres -c "DROP DATABASE $SRC" -c "DROP DATABASE $DST" -c "DROP DATABASE $DST2" >/dev/null
echo "# dump/restore suite took $(rel_since "$t0") s"
tap_done
