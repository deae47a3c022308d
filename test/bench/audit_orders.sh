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

# CPU used by the backends that served the run: the postmaster reaps them, so
# their user+system time ends up in its cutime+cstime (clock ticks).
PM_PID=$(head -1 "${ES_TMP:?}/data/postmaster.pid")
HZ=$(getconf CLK_TCK)
child_ticks() { awk '{print $16 + $17}' "/proc/$PM_PID/stat"; }

run() {   # prints "tps cpu_us_per_order"
    local t0 out t1
    t0=$(child_ticks)
    out=$(pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$script" "$DB" 2>&1)
    sleep 1
    t1=$(child_ticks)
    awk -v t0="$t0" -v t1="$t1" -v hz="$HZ" '
        /^tps/ {tps = $3}
        /number of transactions actually processed/ {split($0, a, ": "); n = a[2] + 0}
        END {printf "%.1f %.0f\n", tps, (n > 0 ? (t1 - t0) * 1e6 / hz / n : 0)}' <<<"$out"
}

on=""; off=""; onc=""; offc=""
for _ in $(seq "$ROUNDS"); do
    set_audit off; q -c CHECKPOINT >/dev/null; read -r t c <<<"$(run)"; off+="$t "; offc+="$c "
    set_audit on;  q -c CHECKPOINT >/dev/null; read -r t c <<<"$(run)"; on+="$t "; onc+="$c "
done
set_audit on
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ON=$(med <<<"$on"); OFF=$(med <<<"$off"); ONC=$(med <<<"$onc"); OFFC=$(med <<<"$offc")
AUDITED=$(q -At -c "SELECT count(*) FROM elfsofa.audit_log WHERE table_name = 'orders'")
echo "process_order, $CLIENTS clients, ${SECS}s x $ROUNDS rounds each"
echo "  tps per round: off $off/ on $on"
echo "  backend CPU us per order per round: off $offc/ on $onc"
printf '%-28s %12.0f tps %10.0f us CPU/order\n' "audit off" "$OFF" "$OFFC" "audit on" "$ON" "$ONC"
printf '%-28s %11.2fx tps %9.2fx CPU-derived throughput   (target >= 0.85x)\n' "on / off" \
    "$(awk -v a="$ON" -v b="$OFF" 'BEGIN {print (b > 0 ? a / b : 0)}')" \
    "$(awk -v a="$OFFC" -v b="$ONC" 'BEGIN {print (b > 0 ? a / b : 0)}')"
echo "orders audited in total: $AUDITED"
