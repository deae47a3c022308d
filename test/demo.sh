#!/usr/bin/env bash
# test/demo.sh — `make demo`: install what is missing, build and install
# elfsofa, start a throwaway server of our own and show the shop working.
# `make stop` (test/demo.sh stop) stops that server.
set -u
source "$(dirname "$0")/lib.sh"

ES_PORT=${ES_PORT:-55431}
ES_TMP=${ES_TMP:-/tmp/elfsofa-demo-$ES_PORT}
export ES_PORT ES_TMP

if [ "${1:-}" = stop ]; then
    ES_BINDIR=$ES_SYS_BINDIR
    es_stop_server
    echo "demo server on port $ES_PORT stopped (data kept in $ES_TMP/data; rm -rf it to start over)"
    exit 0
fi

es_install_packages
es_build_install
es_start_server </dev/null
cd "$ES_ROOT"

psql -X -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS elfsofa_demo' -c 'CREATE DATABASE elfsofa_demo' || exit 1
export PGDATABASE=elfsofa_demo
psql -X -v ON_ERROR_STOP=1 -f test/demo.sql || exit 1

# --- live change events (events area): a subscriber sees each committed change as it happens
echo
echo "== live events: elfsofa-listen (LISTEN elfsofa_events, catch-up through events_since)"
LISTEN_OUT=$ES_TMP/log/demo-listener.jsonl
"$ES_BINDIR/elfsofa-listen" >"$LISTEN_OUT" 2>"$ES_TMP/log/demo-listener.err" &
LISTEN_PID=$!
sleep 0.5
if [ "$(psql -X -A -t -c "SELECT to_regproc('elfsofa.process_order') IS NOT NULL")" = t ]; then
    echo "-- placing three orders with elfsofa.process_order"
    psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET elfsofa.actor = 'demo-listener';
SELECT elfsofa.upsert_customer('listener-demo@example.co.th', 'Live Demo') AS cust \gset
SELECT elfsofa.process_order(jsonb_build_object('customer_id', :'cust',
           'items', jsonb_build_array(jsonb_build_object('sku', sku, 'quantity', 1))))->>'order_number' AS order_number
  FROM (SELECT sku FROM elfsofa.products WHERE elfsofa.available(sku) >= 2 ORDER BY id LIMIT 3) p;
SQL
else
    echo "-- (process_order is not here yet) changing three prices instead"
    psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE elfsofa.products SET price = price + 10 WHERE id IN (SELECT id FROM elfsofa.products ORDER BY id LIMIT 3)"
fi
sleep 1
kill "$LISTEN_PID"; wait "$LISTEN_PID" 2>/dev/null
echo "-- what the listener printed (one JSON line per event; cut at 200 characters):"
cut -c1-200 "$LISTEN_OUT"

cat <<EOF

The demo server is running (port $ES_PORT, socket $ES_TMP/sock). Connect with:

    $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )psql -h $ES_TMP/sock -p $ES_PORT -d elfsofa_demo

Stop it with: make stop
EOF
