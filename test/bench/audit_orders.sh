#!/usr/bin/env bash
# test/bench/audit_orders.sh <db> — process_order throughput (pgbench, TPS)
# with elfsofa's auditing on and off, alternating on/off rounds so that load
# from elsewhere on the machine hits both alike.  Called by bench_audit.sh.
set -euo pipefail
DB=$1
SECS=${BENCH_SECONDS:-10}
CLIENTS=${AUDIT_CLIENTS:-4}
ROUNDS=${AUDIT_ORDER_ROUNDS:-2}
TABLES="products stock_levels customers orders order_lines payments shipments"
q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

q >/dev/null <<'SQL'
SET client_min_messages = warning;
SET elfsofa.actor = 'bench';
INSERT INTO elfsofa.products (sku, name, price)
SELECT 'BENCH-' || g, 'bench cover ' || g, 100 + g FROM generate_series(1, 20) g
ON CONFLICT (sku) DO NOTHING;
SELECT elfsofa.restock('BENCH-' || g, 100000) FROM generate_series(1, 20) g, generate_series(1, 3);
INSERT INTO elfsofa.customers (id, email)
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'bench' || g || '@example.com'
  FROM generate_series(1, 100) g
ON CONFLICT DO NOTHING;
SQL

script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat >"$script" <<'PGB'
\set c random(1, 100)
\set a random(1, 20)
\set b random(1, 20)
SELECT elfsofa.process_order(jsonb_build_object(
         'customer_id', '00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'),
         'items', jsonb_build_array(jsonb_build_object('sku', 'BENCH-' || :a, 'quantity', 1),
                                    jsonb_build_object('sku', 'BENCH-' || :b, 'quantity', 1))));
PGB

set_audit() {   # set_audit on|off
    for t in $TABLES; do
        if [ "$1" = on ]; then q -c "SELECT elfsofa.enable_audit('elfsofa.$t')" >/dev/null
        else q -c "SELECT elfsofa.disable_audit('elfsofa.$t')" >/dev/null; fi
    done
}

tps() {
    pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$script" "$DB" 2>&1 |
        awk '/^tps/ {print $3; exit}'
}

on=""; off=""
for _ in $(seq "$ROUNDS"); do
    set_audit off; q -c CHECKPOINT >/dev/null; off+="$(tps) "
    set_audit on;  q -c CHECKPOINT >/dev/null; on+="$(tps) "
done
set_audit on
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ON=$(med <<<"$on"); OFF=$(med <<<"$off")
AUDITED=$(q -At -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'orders'")
echo "process_order, $CLIENTS clients, ${SECS}s x $ROUNDS rounds each (tps per round: off $off/ on $on)"
printf '%-28s %12.0f tps\n' "audit off" "$OFF" "audit on" "$ON"
printf '%-28s %11.2fx   (target >= 0.85x)\n' "on / off" "$(awk -v a="$ON" -v b="$OFF" 'BEGIN {print (b > 0 ? a / b : 0)}')"
echo "orders audited in total: $AUDITED"
