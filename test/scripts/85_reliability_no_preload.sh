#!/usr/bin/env bash
# test/scripts/85_reliability_no_preload.sh — elfsofa on a server where it is
# not in shared_preload_libraries (the README's plain install: make install,
# CREATE EXTENSION).  Loading it must not fail (PostgreSQL refuses a
# PGC_POSTMASTER setting defined after startup, with FATAL: every backend that
# loaded elfsofa died before its settings took that into account), and every
# documented fallback must serve: orders from 4 clients at once (the order
# number's advisory lock), events NOTIFYed at commit and all read by
# elfsofa-listen (the xid watermark), health() skipping the publisher check,
# the rate limiter in its table.  A server of its own on make test's port + 27.
source "$(dirname "$0")/../tap.sh"
source "$ES_ROOT/test/reliability/lib.sh"

rel_own_server 27 no-preload no-preload <<<"shared_preload_libraries = 'pg_cron'"
NP=$ES_TMP
tap_is "$(q -c "SHOW shared_preload_libraries")" "pg_cron" "a server without elfsofa preloaded"

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION elfsofa;
INSERT INTO elfsofa.products (sku, name, price) SELECT 'NP-' || i, 'cover ' || i, 300 FROM generate_series(1, 8) i;
SELECT count(elfsofa.restock('NP-' || i, 100000)) FROM generate_series(1, 8) i;
INSERT INTO elfsofa.customers (id, email) VALUES ('55555555-5555-5555-5555-555555555555', 'nopreload@example.th');
SQL
tap_ok $? "CREATE EXTENSION elfsofa and a small shop"
tap_is "$(q -c "LOAD 'elfsofa'" -c "SELECT current_setting('elfsofa.database') || ' ' || current_setting('elfsofa.rate_limit_slots')")" "* 10000" \
    "its settings are there (the preload-only ones at their defaults)"
tap_is "$(q -c "SELECT elfsofa.publisher_status()->>'mode' || ' ' || (elfsofa.publisher_status()->>'watermark')")" "commit xid" \
    "no publisher: writers NOTIFY at commit, the xid watermark"

# a listener from the newest event on, then 4 clients x 100 orders
listen_start postgres "$NP"
echo "\\set s random(1, 8)
SELECT elfsofa.process_order(jsonb_build_object('customer_id', '55555555-5555-5555-5555-555555555555'::uuid, 'items', jsonb_build_array(jsonb_build_object('sku', 'NP-' || :s, 'quantity', 1))));" >"$NP/order.sql"
pgbench -n -c 4 -j 2 -t 100 -f "$NP/order.sql" >"$NP/pgbench.log" 2>&1
tap_is "$?" 0 "4 clients place 100 orders each at once, no client aborted"
tap_is "$(q -c "SELECT count(*) || ' ' || count(DISTINCT order_number) FROM elfsofa.orders")" "400 400" "400 orders, 400 distinct numbers"
tap_is "$(q -c "SELECT bool_and(order_number = format('ELF-%s-%s', split_part(order_number, '-', 2), lpad(id::text, 6, '0'))) FROM elfsofa.orders")" \
    "t" "every number carries its own id (the advisory lock's path)"

read -r printed committed twice <<<"$(listen_stop postgres "$NP")"
tap_ok "$([ "$committed" -ge 800 ]; echo $?)" "the 400 orders committed at least 800 events (got $committed)"
tap_is "$printed" "$committed" "elfsofa-listen printed every event of the orders (NOTIFYs from the writers' commits)"
tap_is "$twice" 0 "and none twice"
tap_is "$(q -c "SELECT c->>'status' FROM jsonb_array_elements(elfsofa.health()->'checks') c WHERE c->>'name' = 'event_publisher'")" \
    "skipped" "health(): the publisher check is skipped"
tap_is "$(q -c "SELECT elfsofa.rate_limit('np-test', 1, '1 minute') || ' ' || elfsofa.rate_limit('np-test', 1, '1 minute')")" "true false" \
    "the rate limiter limits"
tap_is "$(q -c "SELECT count(*) FROM elfsofa.rate_limits WHERE bucket = 'np-test'")" 1 "from its table (no shared memory)"
tap_is "$(grep -c 'FATAL' "$NP/log/server.log")" 0 "no FATAL in the server log"
tap_done
