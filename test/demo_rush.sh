#!/usr/bin/env bash
# test/demo_rush.sh — part of `make demo` (called from test/demo.sql with \!):
# BUYERS shoppers press "buy" on the last units of one cover at the same
# moment.  A gate session holds an advisory lock while the buyers connect, so
# their process_order calls start together; stock must end at zero, never
# below, and every buyer either gets an order or a clean "sold out" (PT409).
# Usage: demo_rush.sh SKU BUYERS   (PGHOST/PGPORT/PGUSER/PGDATABASE from demo.sh)
set -u
SKU=$1
BUYERS=${2:-12}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

psql -X -q -At -c "SELECT pg_advisory_lock(4242)" -c "SELECT pg_sleep(1)" >/dev/null &
gate=$!
sleep 0.3
for i in $(seq 1 "$BUYERS"); do
    psql -X -q -At -v ON_ERROR_STOP=1 -v sku="$SKU" -v n="$i" >"$out/$i" 2>&1 <<'SQL' &
SELECT pg_advisory_lock_shared(4242) \g /dev/null
SELECT pg_advisory_unlock_shared(4242) \g /dev/null
SELECT elfsofa.process_order(jsonb_build_object(
         'customer_id', (SELECT id FROM elfsofa.customers WHERE email = format('buyer%s@example.co.th', :'n')),
         'items', jsonb_build_array(jsonb_build_object('sku', :'sku', 'quantity', 1)),
         'idempotency_key', format('rush-%s', :'n'))) ->> 'order_number';
SQL
done
wait
ok=0; soldout=0
for i in $(seq 1 "$BUYERS"); do
    if grep -q '^ELF-' "$out/$i"; then
        ok=$((ok + 1)); printf '  buyer%-3s got %s\n' "$i" "$(grep '^ELF-' "$out/$i")"
    elif grep -q 'insufficient stock\|PT409' "$out/$i"; then
        soldout=$((soldout + 1)); printf '  buyer%-3s sold out: %s\n' "$i" "$(grep -m1 'DETAIL' "$out/$i" | sed 's/^.*DETAIL: *//')"
    else
        printf '  buyer%-3s unexpected: %s\n' "$i" "$(tr '\n' ' ' <"$out/$i")"
    fi
done
echo "  => $ok orders, $soldout sold out, $((BUYERS - ok - soldout)) other"
