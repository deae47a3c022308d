#!/usr/bin/env bash
# 83_reliability_replication.sh — a secondary database: a second
# throwaway server (make test's port + 2) subscribes to the shop's tables through logical
# replication (publish_via_partition_root, initial copy), takes a stream of
# orders, cancellations, status changes and restocks, and must end identical
# for orders, lines, payments, stock and the ledger (md5 of the sorted rows).
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"
t0=$(rel_now)
PUB_HOST=$PGHOST PUB_PORT=$PGPORT PUB_TMP=$ES_TMP
W=$ES_TMP/rel-repl
rm -rf "$W"; mkdir -p "$W"
PUB=rel_repl_pub
SUB=rel_repl_sub
TABLES="elfsofa.products elfsofa.customers elfsofa.stock_levels elfsofa.stock_ledger elfsofa.orders elfsofa.order_lines elfsofa.payments elfsofa.idempotency_keys"
pub() { PGHOST=$PUB_HOST PGPORT=$PUB_PORT q -d $PUB "$@"; }

# Publisher: the shop on make test's server, with some history before subscribing.
rel_shop $PUB
tap_ok $? "publisher: shop loaded"
rel_order_script "$W/order.sql"
pgbench -n -c 4 -j 2 -t 50 -f "$W/order.sql" $PUB >"$W/pgbench-1.log" 2>&1
tap_ok $? "publisher: 200 orders before the subscription"
pub -c "SELECT rel.churn_one() FROM generate_series(1, 100)" >/dev/null
pub -c "DROP PUBLICATION IF EXISTS rel_pub" \
    -c "CREATE PUBLICATION rel_pub FOR TABLE $(tr ' ' ',' <<<"$TABLES") WITH (publish_via_partition_root = true)"
tap_ok $? "publisher: publication with publish_via_partition_root"

# Subscriber: its own server, the same schema (CREATE EXTENSION), then subscribe.
cleanup() {   # never leave a slot behind on make test's server
    psql -X -q -d $SUB -c "DROP SUBSCRIPTION IF EXISTS rel_sub" >/dev/null 2>&1
    es_stop_server
    PGHOST=$PUB_HOST PGPORT=$PUB_PORT psql -X -q -d postgres \
        -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$PUB' AND NOT active" \
        -c "DROP DATABASE IF EXISTS $PUB" >/dev/null 2>&1
}
trap cleanup EXIT
rel_fresh_server $REL_REPL_PORT /tmp/elfsofa-repl-$REL_REPL_PORT <<'CONF'
shared_buffers = '32MB'
max_connections = 30
CONF
q -d postgres -c "CREATE DATABASE $SUB" >/dev/null && q -d $SUB -c "CREATE EXTENSION elfsofa" >/dev/null
tap_ok $? "subscriber: second server with elfsofa created"
q -d $SUB -c "CREATE SUBSCRIPTION rel_sub CONNECTION 'host=$PUB_HOST port=$PUB_PORT dbname=$PUB user=$PGUSER' PUBLICATION rel_pub WITH (copy_data = true)" >/dev/null 2>"$W/sub.err"
tap_ok $? "subscriber: subscription created (initial copy)"
sed 's/^/# /' "$W/sub.err" | head -5

# The stream: orders from 4 clients, lifecycle steps and restocks, concurrently.
cat >"$W/churn.sql" <<'SQL'
SELECT rel.churn_one();
SQL
cat >"$W/restock.sql" <<'SQL'
\set p random(1, 20)
SELECT elfsofa.restock(rel.sku(:p), 10, 'main', 'replication stream');
SQL
PGHOST=$PUB_HOST PGPORT=$PUB_PORT pgbench -n -c 4 -j 2 -T "${REL_REPL_SECONDS:-15}" -R "${REL_REPL_RATE:-300}" \
    -f "$W/order.sql@6" -f "$W/churn.sql@3" -f "$W/restock.sql@1" $PUB >"$W/pgbench-2.log" 2>&1
tap_ok $? "publisher: $(grep -oE 'number of transactions actually processed: [0-9]+' "$W/pgbench-2.log" | grep -oE '[0-9]+$') transactions streamed (orders, lifecycle, restocks)"

# Wait (bounded) until the subscriber has everything, then compare.
fp() {  # fp <psql args...>: name|rows|md5 of each replicated table
    local sql=""
    for t in $TABLES; do
        sql="$sql${sql:+ UNION ALL }SELECT '$t', count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM $t x"
    done
    "$@" -c "$sql"
}
fp pub >"$W/pub.txt"
deadline=$((SECONDS + ${REL_REPL_WAIT:-120}))
while :; do
    fp q -d $SUB >"$W/sub.txt" 2>/dev/null
    cmp -s "$W/pub.txt" "$W/sub.txt" && break
    [ $SECONDS -ge $deadline ] && break
    sleep 1
done
waited=$((SECONDS - deadline + ${REL_REPL_WAIT:-120}))
tap_is "$(q -d $SUB -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" 0 "subscriber: every table finished its initial copy"
for t in $TABLES; do
    tap_is "$(grep "^$t|" "$W/sub.txt")" "$(grep "^$t|" "$W/pub.txt")" "subscriber identical: $t ($(grep "^$t|" "$W/pub.txt" | cut -d'|' -f2) rows)"
done
echo "# caught up ${waited} s after the stream ended"
tap_ok $([ "$(grep '^elfsofa.orders|' "$W/pub.txt" | cut -d'|' -f2)" -gt 200 ]; echo $?) "the stream added orders after the initial copy"
rel_check_invariants $SUB "subscriber" 'event|audit'   # events and the audit log are not replicated

q -d $SUB -c "DROP SUBSCRIPTION rel_sub" >/dev/null
tap_ok $? "subscription dropped (and its slot on the publisher)"
cleanup
trap - EXIT
rm -rf /tmp/elfsofa-repl-$REL_REPL_PORT
echo "# replication suite took $(rel_since "$t0") s"
tap_done
